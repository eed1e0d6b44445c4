//! `/widget.json`: the `[widget]` settings as the web chat reads them
//! (`docs/embedding.md` shows the shape). Texts that are `null` are the
//! chosen language's own; the form lists its fields in order, the name
//! first; `hours` is `null` when the chat is always open.

use serde_json::{Value, json};

use crate::config::WidgetSettings;
use crate::core::ids::{CustomerName, MessageBody};
use crate::core::pre_engagement::{EMAIL_MAX_CHARS, FieldMode};

/// The JSON the page and the embed read.
pub fn to_json(widget: &WidgetSettings) -> Value {
    let form = &widget.form;
    let mut fields = vec![json!({
        "name": "name", "type": "text", "required": true, "maxChars": CustomerName::MAX_CHARS,
    })];
    let mut field = |name: &str, kind: &str, mode: FieldMode, max: usize| {
        if mode != FieldMode::Off {
            fields.push(json!({
                "name": name, "type": kind, "required": mode == FieldMode::Required, "maxChars": max,
            }));
        }
    };
    field("email", "email", form.email, EMAIL_MAX_CHARS);
    field(
        "question",
        "textarea",
        form.question,
        MessageBody::MAX_CHARS,
    );
    if form.topic != FieldMode::Off {
        fields.push(json!({
            "name": "topic", "type": "select", "required": form.topic == FieldMode::Required,
            "choices": form.topics,
        }));
    }
    let hours = widget.hours.as_ref().map(|hours| {
        json!({
            "timeZone": widget.time_zone,
            "week": hours.0.iter().map(|day| {
                day.iter().map(|(start, end)| json!([start, end])).collect::<Vec<_>>()
            }).collect::<Vec<_>>(),
        })
    });
    json!({
        "title": widget.title,
        "greeting": widget.greeting,
        "logoUrl": widget.logo_url.as_ref().map(url::Url::as_str),
        "color": widget.color,
        "colorText": widget.color_text,
        "position": widget.position.as_str(),
        "language": widget.language.as_str(),
        "texts": {
            "waiting": widget.waiting_text,
            "busy": widget.busy_text,
            "ended": widget.ended_text,
            "thankYou": widget.thank_you,
            "closed": widget.closed_text,
            "topicLabel": widget.topic_label,
        },
        "busyAfterSeconds": widget.busy_after_seconds,
        "sound": widget.sound,
        "form": {
            "fields": fields,
            "questionAsFirstMessage": form.question_first,
        },
        "hours": hours,
        "attachments": {
            "types": widget.attachments.types,
            "maxBytes": widget.attachments.max_bytes,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::widget::WeeklyHours;

    #[test]
    fn the_defaults_ask_for_a_name_an_optional_email_and_question() {
        let json = to_json(&WidgetSettings::default());
        let fields: Vec<_> = json["form"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["name"].as_str().unwrap(),
                    f["required"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            fields,
            [("name", true), ("email", false), ("question", false)]
        );
        assert_eq!(json["language"], "auto");
        assert_eq!(json["texts"]["waiting"], Value::Null);
        assert_eq!(json["hours"], Value::Null);
        assert_eq!(json["busyAfterSeconds"], 120);
    }

    #[test]
    fn a_topic_list_and_business_hours_are_passed_on() {
        let mut widget = WidgetSettings::default();
        widget.form.topic = FieldMode::Required;
        widget.form.topics = vec!["Sales".into(), "Support".into()];
        widget.hours = Some(WeeklyHours::parse("mon 09:00-17:00").unwrap());
        widget.time_zone = "Europe/Berlin".into();
        let json = to_json(&widget);
        assert_eq!(
            json["form"]["fields"][3],
            json!({"name": "topic", "type": "select", "required": true, "choices": ["Sales", "Support"]})
        );
        assert_eq!(json["hours"]["timeZone"], "Europe/Berlin");
        assert_eq!(json["hours"]["week"][0], json!([[540, 1020]]));
        assert_eq!(json["hours"]["week"][6], json!([]));
    }
}
