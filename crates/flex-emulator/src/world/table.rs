//! `Table<T>`: the emulator's one collection type. Resources are listed in
//! creation order (as Twilio lists them) and found by SID in O(1).

use std::collections::HashMap;

use super::error::WorldError;

/// Something stored in a [`Table`], keyed by its SID.
pub(crate) trait Keyed {
    fn key(&self) -> &str;
}

/// An insertion-ordered map from SID to resource.
#[derive(Debug, Clone)]
pub(crate) struct Table<T> {
    items: Vec<T>,
    index: HashMap<String, usize>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<T: Keyed> Table<T> {
    /// Adds `item` at the end (or replaces the item with the same key in place).
    pub fn insert(&mut self, item: T) {
        match self.index.get(item.key()) {
            Some(&at) => self.items[at] = item,
            None => {
                self.index.insert(item.key().to_owned(), self.items.len());
                self.items.push(item);
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<&T> {
        self.index.get(key).map(|&at| &self.items[at])
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut T> {
        self.index.get(key).map(|&at| &mut self.items[at])
    }

    /// The item with this key, or a not-found error naming it as a `kind`.
    pub fn require(&self, kind: &'static str, key: &str) -> Result<&T, WorldError> {
        self.get(key)
            .ok_or_else(|| WorldError::not_found(kind, key))
    }

    /// [`Table::require`], to change the item.
    pub fn require_mut(&mut self, kind: &'static str, key: &str) -> Result<&mut T, WorldError> {
        self.get_mut(key)
            .ok_or_else(|| WorldError::not_found(kind, key))
    }

    pub fn contains(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    /// Removes and returns the item, keeping the others in order.
    pub fn remove(&mut self, key: &str) -> Option<T> {
        let at = self.index.remove(key)?;
        let item = self.items.remove(at);
        for later in &self.items[at..] {
            if let Some(slot) = self.index.get_mut(later.key()) {
                *slot -= 1;
            }
        }
        Some(item)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn find(&self, predicate: impl Fn(&T) -> bool) -> Option<&T> {
        self.items.iter().find(|item| predicate(item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Item(&'static str, u32);

    impl Keyed for Item {
        fn key(&self) -> &str {
            self.0
        }
    }

    #[test]
    fn items_stay_in_insertion_order_after_a_removal() {
        let mut table = Table::default();
        for (key, value) in [("a", 1), ("b", 2), ("c", 3), ("d", 4)] {
            table.insert(Item(key, value));
        }
        assert_eq!(table.remove("b"), Some(Item("b", 2)));
        let keys: Vec<_> = table.iter().map(|item| item.0).collect();
        assert_eq!(keys, ["a", "c", "d"]);
        assert_eq!(table.get("d"), Some(&Item("d", 4)));
        assert_eq!(table.remove("b"), None);
        assert_eq!(table.len(), 3);
    }

    #[test]
    fn inserting_an_existing_key_replaces_in_place() {
        let mut table = Table::default();
        table.insert(Item("a", 1));
        table.insert(Item("b", 2));
        table.insert(Item("a", 9));
        let values: Vec<_> = table.iter().map(|item| item.1).collect();
        assert_eq!(values, [9, 2]);
    }

    #[test]
    fn a_required_item_that_is_missing_is_a_not_found_naming_it() {
        let mut table = Table::default();
        table.insert(Item("a", 1));
        assert_eq!(table.require("Item", "a"), Ok(&Item("a", 1)));
        assert_eq!(
            table.require("Item", "zz"),
            Err(WorldError::not_found("Item", "zz"))
        );
        table.require_mut("Item", "a").unwrap().1 = 5;
        assert_eq!(table.get("a"), Some(&Item("a", 5)));
    }
}
