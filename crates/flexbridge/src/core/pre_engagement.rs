//! The pre-engagement form: which fields a customer fills in before a
//! chat ([`FormSpec`], from the operator's settings), and what they filled
//! in, checked field by field ([`PreEngagement`]). The name is always
//! asked for and checked by [`CustomerName`]; the e-mail, the question and
//! the topic (a list of choices) are each off, optional or required.
//!
//! What is kept goes to Flex the way Flex's own web chat sends it
//! (`docs/twilio-reference.md`, `docs/embedding.md`): an object
//! `pre_engagement_data` of the answers (`friendlyName` is the name) in the
//! channel's (conversation's) attributes and the task's, plus `name` and
//! `email` in the task's.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::ids::{CustomerName, MessageBody};

/// Whether a field is on the form, and whether it must be filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldMode {
    #[default]
    Off,
    Optional,
    Required,
}

impl FieldMode {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "off" => Ok(Self::Off),
            "optional" => Ok(Self::Optional),
            "required" => Ok(Self::Required),
            other => Err(format!(
                "expected `off`, `optional` or `required`, got `{other}`"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }
}

/// The form's fields besides the name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FormSpec {
    pub email: FieldMode,
    pub question: FieldMode,
    pub topic: FieldMode,
    /// The topic list's choices (non-empty when the topic is on).
    pub topics: Vec<String>,
    /// The question is also sent as the customer's first message.
    pub question_first: bool,
}

/// The form as a customer submitted it (each field as sent, if sent).
#[derive(Debug, Clone, Copy, Default)]
pub struct FormAnswers<'a> {
    pub name: &'a str,
    pub email: Option<&'a str>,
    pub question: Option<&'a str>,
    pub topic: Option<&'a str>,
}

/// The fields of the form, as the protocol names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    Name,
    Email,
    Question,
    Topic,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Email => "email",
            Self::Question => "question",
            Self::Topic => "topic",
        }
    }
}

/// Why one field was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldError {
    /// Required and empty.
    Required,
    /// More characters than allowed.
    TooLong { max: usize },
    /// Not an e-mail address.
    InvalidEmail,
    /// Not one of the topic list's choices.
    InvalidChoice,
    /// Not allowed otherwise (a control character, a field that is off).
    Invalid(String),
}

impl FieldError {
    /// The protocol's code (`docs/protocol.md`, `register`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::TooLong { .. } => "too_long",
            Self::InvalidEmail => "invalid_email",
            Self::InvalidChoice => "invalid_choice",
            Self::Invalid(_) => "invalid",
        }
    }

    /// A sentence in English (clients show their own, by code).
    pub fn message(&self) -> String {
        match self {
            Self::Required => "this field is required".into(),
            Self::TooLong { max } => format!("at most {max} characters"),
            Self::InvalidEmail => "not an e-mail address".into(),
            Self::InvalidChoice => "not one of the choices".into(),
            Self::Invalid(why) => why.clone(),
        }
    }
}

/// Every field that was refused, and why.
pub type FieldErrors = BTreeMap<Field, FieldError>;

/// The longest e-mail address (RFC 5321's path limit).
pub const EMAIL_MAX_CHARS: usize = 254;
/// A topic choice's longest text.
pub const TOPIC_MAX_CHARS: usize = 100;

/// What a customer told in the form besides their name, checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PreEngagement {
    pub email: Option<String>,
    /// At most a message's length: it may become the first message.
    pub question: Option<String>,
    pub topic: Option<String>,
}

impl FormSpec {
    /// Checks a submitted form: the name and the answers, or every field
    /// that is wrong. A field that is off must not be sent with a value.
    pub fn check(
        &self,
        answers: &FormAnswers<'_>,
    ) -> Result<(CustomerName, PreEngagement), FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = match CustomerName::parse(answers.name) {
            Ok(name) => Some(name),
            Err(error) => {
                let error = if answers.name.trim().is_empty() {
                    FieldError::Required
                } else {
                    FieldError::Invalid(error.to_string())
                };
                errors.insert(Field::Name, error);
                None
            }
        };
        let email = field(Field::Email, self.email, answers.email, &mut errors, |v| {
            if v.chars().count() > EMAIL_MAX_CHARS {
                Err(FieldError::TooLong {
                    max: EMAIL_MAX_CHARS,
                })
            } else if is_email(v) {
                Ok(v.to_owned())
            } else {
                Err(FieldError::InvalidEmail)
            }
        });
        let question = field(
            Field::Question,
            self.question,
            answers.question,
            &mut errors,
            |v| {
                MessageBody::parse(v)
                    .map(|body| body.as_str().to_owned())
                    .map_err(|_| FieldError::TooLong {
                        max: MessageBody::MAX_CHARS,
                    })
            },
        );
        let topic = field(
            Field::Topic,
            self.topic,
            answers.topic,
            &mut errors,
            |v| match self.topics.iter().find(|choice| choice.as_str() == v) {
                Some(choice) => Ok(choice.clone()),
                None => Err(FieldError::InvalidChoice),
            },
        );
        match name {
            Some(name) if errors.is_empty() => Ok((
                name,
                PreEngagement {
                    email,
                    question,
                    topic,
                },
            )),
            _ => Err(errors),
        }
    }
}

/// One optional field: trimmed, empty counts as absent.
fn field(
    which: Field,
    mode: FieldMode,
    raw: Option<&str>,
    errors: &mut FieldErrors,
    check: impl FnOnce(&str) -> Result<String, FieldError>,
) -> Option<String> {
    let value = raw.map(str::trim).filter(|v| !v.is_empty());
    let result = match (mode, value) {
        (FieldMode::Off, None) | (FieldMode::Optional, None) => return None,
        (FieldMode::Off, Some(_)) => Err(FieldError::Invalid("this form has no such field".into())),
        (FieldMode::Required, None) => Err(FieldError::Required),
        (_, Some(value)) if value.chars().any(char::is_control) && which != Field::Question => Err(
            FieldError::Invalid("control characters are not allowed".into()),
        ),
        (_, Some(value)) => check(value),
    };
    match result {
        Ok(value) => Some(value),
        Err(error) => {
            errors.insert(which, error);
            None
        }
    }
}

/// `local@domain.tld`, no spaces, one `@`: what a form can check without
/// sending mail.
fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !value.chars().any(char::is_whitespace)
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| !label.is_empty())
}

impl PreEngagement {
    /// True when the customer told nothing besides their name.
    pub fn is_empty(&self) -> bool {
        self.email.is_none() && self.question.is_none() && self.topic.is_none()
    }

    /// `pre_engagement_data`, as Flex's web chat writes it: the answers,
    /// the name as `friendlyName`.
    pub fn flex_data(&self, name: &str) -> Value {
        let mut data = Map::new();
        data.insert("friendlyName".into(), json!(name));
        for (key, value) in self.fields() {
            data.insert(key.into(), json!(value));
        }
        Value::Object(data)
    }

    /// The task attributes Flex's web chat adds: `name`, `email` (when
    /// given) and `pre_engagement_data`.
    pub fn task_attributes(&self, name: &str) -> Map<String, Value> {
        let mut attributes = Map::new();
        attributes.insert("name".into(), json!(name));
        if let Some(email) = &self.email {
            attributes.insert("email".into(), json!(email));
        }
        attributes.insert("pre_engagement_data".into(), self.flex_data(name));
        attributes
    }

    fn fields(&self) -> impl Iterator<Item = (&'static str, &String)> {
        [
            ("email", &self.email),
            ("question", &self.question),
            ("topic", &self.topic),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.as_ref().map(|v| (key, v)))
    }

    /// As the store keeps it (a JSON object of the answers).
    pub fn to_text(&self) -> String {
        let map: Map<String, Value> = self.fields().map(|(k, v)| (k.into(), json!(v))).collect();
        Value::Object(map).to_string()
    }

    /// Read back from the store.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        let map: BTreeMap<String, String> = serde_json::from_str(text)?;
        let get = |key: &str| map.get(key).cloned();
        Ok(Self {
            email: get("email"),
            question: get("question"),
            topic: get("topic"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FormSpec {
        FormSpec {
            email: FieldMode::Required,
            question: FieldMode::Optional,
            topic: FieldMode::Optional,
            topics: vec!["Sales".into(), "Support".into()],
            question_first: false,
        }
    }

    #[test]
    fn a_complete_form_is_kept_trimmed() {
        let (name, answers) = spec()
            .check(&FormAnswers {
                name: " Ada ",
                email: Some(" ada@example.com "),
                question: Some(" Where is my order? "),
                topic: Some("Support"),
            })
            .unwrap();
        assert_eq!(name.as_str(), "Ada");
        assert_eq!(answers.email.as_deref(), Some("ada@example.com"));
        assert_eq!(answers.question.as_deref(), Some("Where is my order?"));
        assert_eq!(
            answers.task_attributes("Ada"),
            json!({
                "name": "Ada", "email": "ada@example.com",
                "pre_engagement_data": {"friendlyName": "Ada", "email": "ada@example.com",
                    "question": "Where is my order?", "topic": "Support"}
            })
            .as_object()
            .unwrap()
            .clone()
        );
        assert_eq!(PreEngagement::parse(&answers.to_text()).unwrap(), answers);
    }

    #[test]
    fn every_wrong_field_is_named_with_its_reason() {
        let errors = spec()
            .check(&FormAnswers {
                name: "  ",
                email: Some("not-an-address"),
                question: Some(&"x".repeat(1601)),
                topic: Some("Billing"),
            })
            .unwrap_err();
        assert_eq!(errors[&Field::Name], FieldError::Required);
        assert_eq!(errors[&Field::Email], FieldError::InvalidEmail);
        assert_eq!(errors[&Field::Question], FieldError::TooLong { max: 1600 });
        assert_eq!(errors[&Field::Topic], FieldError::InvalidChoice);
        let missing = spec()
            .check(&FormAnswers {
                name: "Ada",
                ..FormAnswers::default()
            })
            .unwrap_err();
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[&Field::Email].code(), "required");
    }

    #[test]
    fn a_field_that_is_off_must_stay_empty_and_optional_ones_may() {
        let name_only = FormSpec::default();
        let (_, answers) = name_only
            .check(&FormAnswers {
                name: "Ada",
                email: Some(""),
                ..FormAnswers::default()
            })
            .unwrap();
        assert!(answers.is_empty());
        let errors = name_only
            .check(&FormAnswers {
                name: "Ada",
                topic: Some("Sales"),
                ..FormAnswers::default()
            })
            .unwrap_err();
        assert_eq!(errors[&Field::Topic].code(), "invalid");
    }

    #[test]
    fn e_mail_addresses_are_checked_for_their_shape_only() {
        for good in ["a@b.co", "first.last+tag@mail.example.org"] {
            assert!(is_email(good), "{good}");
        }
        for bad in ["a@b", "@b.co", "a b@c.co", "a@@b.co", "a@b..co", "ab.co"] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
