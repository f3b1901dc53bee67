//! ArcSight Common Event Format, for SIEMs that read CEF over syslog or files.

use super::Event;

/// Escapes a CEF header field: `\` and `|`.
fn header(text: &str) -> String {
    text.replace('\\', "\\\\").replace('|', "\\|")
}

/// Escapes a CEF extension value: `\`, `=`, and line breaks.
fn value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('=', "\\=")
        .replace('\r', "\\r")
        .replace('\n', "\\n")
}

impl Event {
    /// One CEF line: `CEF:0|otgate|otgate|VERSION|TYPE|NAME|SEVERITY|EXTENSIONS`, with the
    /// whole event as JSON in `msg`.
    pub fn to_cef(&self, version: &str) -> String {
        let name = self.kind.name();
        let mut ext = vec![format!(
            "rt={}",
            self.at.unix_timestamp() * 1000 + i64::from(self.at.millisecond())
        )];
        if let Some(actor) = &self.actor {
            ext.push(format!("suser={}", value(actor.as_str())));
        }
        if let Some(source) = self.source {
            ext.push(format!("src={source}"));
        }
        if let Some(zone) = &self.zone {
            ext.push(format!("cs1Label=zone cs1={}", value(zone.as_str())));
        }
        let json = serde_json::to_string(&self.kind).unwrap_or_default();
        ext.push(format!("msg={}", value(&json)));
        format!(
            "CEF:0|otgate|otgate|{}|{}|{}|{}|{}",
            header(version),
            name,
            header(&name.replace('_', " ")),
            self.kind.severity(),
            ext.join(" ")
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::event::{Event, EventKind};
    use crate::id::UserName;

    #[test]
    fn cef_lines_escape_and_carry_fields() {
        let event = Event::now(EventKind::LoginFailed {
            user: "a|b=c\nd".into(),
            reason: "wrong password".into(),
        })
        .by(Some(UserName::new("eng1").unwrap()))
        .from_addr(Some("10.1.2.3".parse().unwrap()));
        let line = event.to_cef("0.1.0");
        assert!(
            line.starts_with("CEF:0|otgate|otgate|0.1.0|login_failed|login failed|5|rt="),
            "{line}"
        );
        assert!(line.contains("suser=eng1 src=10.1.2.3"));
        assert!(line.contains(r"a|b\=c\\nd"), "{line}");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn events_round_trip_as_json() {
        let event = Event::now(EventKind::GrantActivated {
            grant: crate::GrantId::new(7).unwrap(),
        });
        let json = serde_json::to_string(&event).unwrap();
        assert!(json.contains("\"type\":\"grant_activated\""), "{json}");
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back.kind, event.kind);
    }
}
