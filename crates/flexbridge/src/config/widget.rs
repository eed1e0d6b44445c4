//! The web chat's settings: which sites may embed it (`ALLOWED_ORIGINS`)
//! and the `[widget]` section (branding, language, texts, the
//! pre-engagement form, business hours). The bridge serves the section
//! to the page as JSON (`crate::web`, `docs/embedding.md`), so changing
//! it needs a restart, never a rebuild.

use url::Url;

use super::raw;
use super::setting::{self, Setting};
use super::{ConfigError, Layers};
use crate::core::attachment::AttachmentPolicy;
use crate::core::pre_engagement::{FieldMode, FormSpec, TOPIC_MAX_CHARS};

/// Sites (`scheme://host[:port]`) besides the bridge's own that may frame
/// the chat and open its socket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins(Vec<Url>);

impl AllowedOrigins {
    /// `https://a.example, http://localhost:8080`: comma- or
    /// space-separated origins, each without a path, query or fragment.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut origins = Vec::new();
        for item in raw
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let url = Url::parse(item).map_err(|e| format!("`{item}`: {e}"))?;
            let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() || !bare {
                return Err(format!(
                    "`{item}` is not an origin (expected e.g. https://www.example.com)"
                ));
            }
            if !url.username().is_empty() || url.password().is_some() {
                return Err(format!("`{item}` must not carry credentials"));
            }
            origins.push(url);
        }
        Ok(Self(origins))
    }

    /// The origins as browsers send them (`Origin` header), e.g.
    /// `https://www.example.com` (default ports left out).
    pub fn serialized(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|url| url.origin().ascii_serialization())
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The bottom corner the embedded launcher sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Position {
    #[default]
    Right,
    Left,
}

impl Position {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Right => "right",
            Self::Left => "left",
        }
    }

    fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "right" => Ok(Self::Right),
            "left" => Ok(Self::Left),
            other => Err(format!("expected `right` or `left`, got `{other}`")),
        }
    }
}

/// The languages the widget ships strings for.
pub const LANGUAGES: [&str; 4] = ["en", "es", "fr", "de"];

/// `auto` (the browser's preferred languages choose among [`LANGUAGES`])
/// or one of them, forced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Language(Option<&'static str>);

impl Language {
    pub fn as_str(&self) -> &'static str {
        self.0.unwrap_or("auto")
    }

    /// The forced language, if any.
    pub fn forced(&self) -> Option<&'static str> {
        self.0
    }

    fn parse(raw: &str) -> Result<Self, String> {
        if raw == "auto" {
            return Ok(Self(None));
        }
        LANGUAGES
            .iter()
            .find(|lang| **lang == raw)
            .map(|lang| Self(Some(*lang)))
            .ok_or_else(|| {
                format!(
                    "expected `auto` or one of {}, got `{raw}`",
                    LANGUAGES.join(", ")
                )
            })
    }
}

/// Opening hours per weekday, Monday first, as minutes after midnight
/// (`[start, end)`, end up to 1440).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WeeklyHours(pub [Vec<(u16, u16)>; 7]);

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl WeeklyHours {
    /// `mon-fri 09:00-17:00, sat 10:00-13:00 14:00-16:00`: entries
    /// separated by `,` or `;`, each a day or a day range and one or more
    /// time ranges. Days not named are closed.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut week: [Vec<(u16, u16)>; 7] = Default::default();
        let entries: Vec<&str> = raw
            .split([',', ';'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if entries.is_empty() {
            return Err("no opening hours given (leave the setting unset for always open)".into());
        }
        for entry in entries {
            let mut words = entry.split_whitespace();
            let days = words.next().unwrap_or_default().to_ascii_lowercase();
            let (first, last) = match days.split_once('-') {
                Some((a, b)) => (day(a)?, day(b)?),
                None => (day(&days)?, day(&days)?),
            };
            if first > last {
                return Err(format!(
                    "`{days}`: the first day must come before the last (mon…sun)"
                ));
            }
            let ranges: Vec<(u16, u16)> = words.map(time_range).collect::<Result<_, _>>()?;
            if ranges.is_empty() {
                return Err(format!(
                    "`{entry}`: which hours? (e.g. `{days} 09:00-17:00`)"
                ));
            }
            for slot in &mut week[first..=last] {
                slot.extend(&ranges);
                slot.sort_unstable();
            }
        }
        Ok(Self(week))
    }
}

fn day(raw: &str) -> Result<usize, String> {
    DAYS.iter()
        .position(|d| *d == raw)
        .ok_or_else(|| format!("`{raw}` is not a day (mon, tue, wed, thu, fri, sat, sun)"))
}

fn time_range(raw: &str) -> Result<(u16, u16), String> {
    let (start, end) = raw
        .split_once('-')
        .ok_or_else(|| format!("`{raw}` is not a time range like 09:00-17:00"))?;
    let (start, end) = (minutes(start)?, minutes(end)?);
    if start >= end {
        return Err(format!("`{raw}`: the range must end after it starts"));
    }
    Ok((start, end))
}

fn minutes(raw: &str) -> Result<u16, String> {
    let bad = || format!("`{raw}` is not a time like 09:00");
    let (h, m) = raw.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m > 59 || h > 24 || (h == 24 && m > 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// An IANA zone name's shape (`UTC`, `Europe/Berlin`,
/// `America/Argentina/Buenos_Aires`, `Etc/GMT+2`). The browser resolves it
/// (`Intl`); one it does not know counts as always open there, and says
/// so in the browser's console.
fn parse_time_zone(raw: &str) -> Result<String, String> {
    let ok_part = |part: &str| {
        !part.is_empty()
            && part.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c))
    };
    if raw.len() <= 64 && raw.split('/').all(ok_part) {
        Ok(raw.to_owned())
    } else {
        Err(format!(
            "`{raw}` is not a time zone name like Europe/Berlin"
        ))
    }
}

/// `#rgb` or `#rrggbb`.
fn parse_color(raw: &str) -> Result<String, String> {
    let hex = raw.strip_prefix('#').unwrap_or_default();
    if matches!(hex.len(), 3 | 6) && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(format!("`{raw}` is not a colour like #1f5fd6"))
    }
}

/// The longest text a `[widget]` setting may hold.
pub const TEXT_MAX_CHARS: usize = 500;

fn parse_text(raw: &str) -> Result<String, String> {
    let n = raw.chars().count();
    if n == 0 {
        Err("empty (leave it unset for the language's own text)".into())
    } else if n > TEXT_MAX_CHARS {
        Err(format!("at most {TEXT_MAX_CHARS} characters, got {n}"))
    } else if raw.chars().any(|c| c.is_control() && c != '\n') {
        Err("control characters are not allowed".into())
    } else {
        Ok(raw.to_owned())
    }
}

fn parse_topics(raw: &str) -> Result<Vec<String>, String> {
    let topics: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    if topics.is_empty() {
        return Err("no choices".into());
    }
    if let Some(long) = topics.iter().find(|t| t.chars().count() > TOPIC_MAX_CHARS) {
        return Err(format!(
            "`{long}` is longer than {TOPIC_MAX_CHARS} characters"
        ));
    }
    Ok(topics)
}

/// The `[widget]` section, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WidgetSettings {
    pub title: Option<String>,
    pub greeting: Option<String>,
    pub color: Option<String>,
    pub color_text: Option<String>,
    pub logo_url: Option<Url>,
    pub position: Position,
    pub language: Language,
    pub waiting_text: Option<String>,
    pub busy_text: Option<String>,
    /// 0: never show the busy text.
    pub busy_after_seconds: u32,
    pub ended_text: Option<String>,
    pub thank_you: Option<String>,
    pub sound: bool,
    pub form: FormSpec,
    pub topic_label: Option<String>,
    /// `None`: always open.
    pub hours: Option<WeeklyHours>,
    pub time_zone: String,
    pub closed_text: Option<String>,
    /// Which files customers may attach.
    pub attachments: AttachmentPolicy,
}

/// The largest attachment the setting allows: Flex's limit for a web
/// chat file, 16,777,216 bytes (Twilio's "File Attachments and API
/// Limits" page for Flex Conversations; docs/twilio-reference.md §10).
pub const MAX_ATTACHMENT_BYTES: u64 = 16 * 1024 * 1024;

fn parse_max_bytes(raw: u64) -> Result<usize, String> {
    if raw == 0 || raw > MAX_ATTACHMENT_BYTES {
        return Err(format!(
            "{raw} is not between 1 and {MAX_ATTACHMENT_BYTES} (Flex's limit)"
        ));
    }
    usize::try_from(raw).map_err(|e| e.to_string())
}

impl Default for WidgetSettings {
    fn default() -> Self {
        Self {
            title: None,
            greeting: None,
            color: None,
            color_text: None,
            logo_url: None,
            position: Position::Right,
            language: Language::default(),
            waiting_text: None,
            busy_text: None,
            busy_after_seconds: 120,
            ended_text: None,
            thank_you: None,
            sound: false,
            form: FormSpec {
                email: FieldMode::Optional,
                question: FieldMode::Optional,
                topic: FieldMode::Off,
                topics: Vec::new(),
                question_first: false,
            },
            topic_label: None,
            hours: None,
            time_zone: "UTC".into(),
            closed_text: None,
            attachments: AttachmentPolicy::default(),
        }
    }
}

impl WidgetSettings {
    pub fn parse(layers: &Layers, raw: &raw::Widget) -> Result<Self, ConfigError> {
        let text = |setting: Setting, value: &Option<String>| {
            layers.optional(setting, value.as_deref(), parse_text)
        };
        let topics = layers
            .optional(
                setting::WIDGET_FORM_TOPICS,
                raw.form_topics.as_deref(),
                parse_topics,
            )?
            .unwrap_or_default();
        let topic = layers.parse(
            setting::WIDGET_FORM_TOPIC,
            &raw.form_topic,
            FieldMode::parse,
        )?;
        if topic != FieldMode::Off && topics.is_empty() {
            return Err(ConfigError::Missing {
                setting: setting::WIDGET_FORM_TOPICS,
                why: format!(
                    " ({} is `{}`, so the topic list needs its choices)",
                    setting::WIDGET_FORM_TOPIC.env,
                    topic.as_str()
                ),
            });
        }
        Ok(Self {
            title: text(setting::WIDGET_TITLE, &raw.title)?,
            greeting: text(setting::WIDGET_GREETING, &raw.greeting)?,
            color: layers.optional(setting::WIDGET_COLOR, raw.color.as_deref(), parse_color)?,
            color_text: layers.optional(
                setting::WIDGET_COLOR_TEXT,
                raw.color_text.as_deref(),
                parse_color,
            )?,
            logo_url: layers.optional(
                setting::WIDGET_LOGO_URL,
                raw.logo_url.as_deref(),
                super::parse_http_url,
            )?,
            position: layers.parse(setting::WIDGET_POSITION, &raw.position, Position::parse)?,
            language: layers.parse(setting::WIDGET_LANGUAGE, &raw.language, Language::parse)?,
            waiting_text: text(setting::WIDGET_WAITING_TEXT, &raw.waiting_text)?,
            busy_text: text(setting::WIDGET_BUSY_TEXT, &raw.busy_text)?,
            busy_after_seconds: raw.busy_after_seconds,
            ended_text: text(setting::WIDGET_ENDED_TEXT, &raw.ended_text)?,
            thank_you: text(setting::WIDGET_THANK_YOU, &raw.thank_you)?,
            sound: raw.sound,
            form: FormSpec {
                email: layers.parse(
                    setting::WIDGET_FORM_EMAIL,
                    &raw.form_email,
                    FieldMode::parse,
                )?,
                question: layers.parse(
                    setting::WIDGET_FORM_QUESTION,
                    &raw.form_question,
                    FieldMode::parse,
                )?,
                topic,
                topics,
                question_first: raw.question_as_first_message,
            },
            topic_label: text(setting::WIDGET_FORM_TOPIC_LABEL, &raw.form_topic_label)?,
            hours: layers.optional(
                setting::WIDGET_HOURS,
                raw.hours.as_deref(),
                WeeklyHours::parse,
            )?,
            time_zone: layers.parse(setting::WIDGET_TIME_ZONE, &raw.time_zone, parse_time_zone)?,
            closed_text: text(setting::WIDGET_CLOSED_TEXT, &raw.closed_text)?,
            attachments: AttachmentPolicy {
                types: layers.parse(
                    setting::ATTACHMENT_TYPES,
                    &raw.attachment_types,
                    AttachmentPolicy::parse_types,
                )?,
                max_bytes: parse_max_bytes(raw.attachment_max_bytes)
                    .map_err(|e| layers.malformed(setting::ATTACHMENT_MAX_BYTES, e))?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_origins_are_bare_origins_as_browsers_send_them() {
        let origins = AllowedOrigins::parse(
            "https://www.example.com, http://localhost:8080 https://b.example:443",
        )
        .unwrap();
        assert_eq!(
            origins.serialized(),
            [
                "https://www.example.com",
                "http://localhost:8080",
                "https://b.example"
            ]
        );
        assert!(AllowedOrigins::parse("").unwrap().is_empty());
        for bad in [
            "https://a.example/page",
            "ftp://a.example",
            "a.example",
            "https://u:p@a.example",
        ] {
            assert!(AllowedOrigins::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn business_hours_read_day_ranges_and_several_slots() {
        let hours = WeeklyHours::parse("mon-fri 09:00-17:00; sat 10:00-12:00 13:00-24:00").unwrap();
        assert_eq!(hours.0[0], [(540, 1020)]);
        assert_eq!(hours.0[4], [(540, 1020)]);
        assert_eq!(hours.0[5], [(600, 720), (780, 1440)]);
        assert!(hours.0[6].is_empty());
        for bad in [
            "",
            "fri-mon 09:00-17:00",
            "mon",
            "mon 9:00-17:00",
            "mon 17:00-09:00",
            "xyz 09:00-10:00",
            "mon 24:30-25:00",
        ] {
            assert!(WeeklyHours::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn colours_zones_and_languages_are_checked() {
        assert_eq!(parse_color("#1F5FD6").unwrap(), "#1f5fd6");
        assert!(parse_color("#12").is_err() && parse_color("red").is_err());
        assert!(parse_time_zone("America/Argentina/Buenos_Aires").is_ok());
        assert!(parse_time_zone("Etc/GMT+2").is_ok());
        assert!(parse_time_zone("Europe/../etc").is_err());
        assert_eq!(Language::parse("de").unwrap().forced(), Some("de"));
        assert_eq!(Language::parse("auto").unwrap().forced(), None);
        assert!(Language::parse("it").is_err());
    }
}
