//! The configuration text Warden keeps in its state dir (the last-known-good
//! copy) must not hold the secrets written inline in it. [`seal`] replaces
//! each secret value in the TOML text (operator tokens, notifier secrets and
//! routing keys, API keys, every `headers` and `env` value, the userinfo and
//! query of every `url` and `base_url`, all of a Slack notifier's URL) with
//! its redacted form, keeping everything else byte for byte. [`unseal`]
//! puts them back from the configuration being replaced, matched by key path
//! (array entries by `name`); a secret with no counterpart there is left
//! empty, so a rollback never sends `***` as a credential and fails closed.

use std::collections::BTreeMap;

use toml_edit::{DocumentMut, Item, TableLike, Value};

use super::{REDACTED, redact_url};

/// Keys whose whole value is a secret.
const SECRET_SCALARS: [&str; 4] = ["operator_token", "secret", "routing_key", "api_key"];

/// Tables whose every value is a secret.
const SECRET_MAPS: [&str; 2] = ["headers", "env"];

/// `text` with every inline secret redacted. Text that is not TOML (it
/// passed validation, so this should not happen) is not kept at all.
pub fn seal(text: &str) -> String {
    let Ok(mut doc) = text.parse::<DocumentMut>() else {
        return "# not kept: the configuration could not be re-read to redact its secrets\n"
            .to_owned();
    };
    let mut changed = false;
    walk_table(doc.as_table_mut(), "", &mut |_, leaf, value| {
        if let Some(sealed) = sealed_form(leaf, value) {
            replace(value, &sealed);
            changed = true;
        }
    });
    if changed {
        doc.to_string()
    } else {
        text.to_owned()
    }
}

/// `sealed` (a text [`seal`] wrote) with each redacted secret taken from
/// `current` where `current` has the same key with a value that seals the
/// same way; otherwise the secret is left empty.
pub fn unseal(sealed: &str, current: &str) -> String {
    let mut originals: BTreeMap<String, (String, String)> = BTreeMap::new();
    if let Ok(mut doc) = current.parse::<DocumentMut>() {
        walk_table(doc.as_table_mut(), "", &mut |path, leaf, value| {
            if let (Some(form), Some(original)) = (sealed_form(leaf, value), value.as_str()) {
                originals.insert(path.to_owned(), (form, original.to_owned()));
            }
        });
    }
    let Ok(mut doc) = sealed.parse::<DocumentMut>() else {
        return sealed.to_owned();
    };
    walk_table(doc.as_table_mut(), "", &mut |path, _, value| {
        let Some(text) = value.as_str() else {
            return;
        };
        if !text.contains(REDACTED) {
            return;
        }
        match originals.get(path) {
            Some((form, original)) if form == text => replace(value, original),
            _ => replace(value, ""),
        }
    });
    doc.to_string()
}

#[derive(Clone, Copy)]
enum Leaf {
    /// The whole value is secret.
    Whole,
    /// A URL: userinfo and query are secret (everything past the host if `whole`).
    Url { whole: bool },
}

/// What `value` becomes when sealed; `None` when it holds nothing secret.
fn sealed_form(leaf: Leaf, value: &Value) -> Option<String> {
    let text = value.as_str()?;
    let form = match leaf {
        Leaf::Whole => REDACTED.to_owned(),
        Leaf::Url { whole } => redact_url(text, whole),
    };
    (form != text).then_some(form)
}

fn replace(value: &mut Value, text: &str) {
    let decor = value.decor().clone();
    let mut new = Value::from(text);
    *new.decor_mut() = decor;
    *value = new;
}

type Visit<'a> = dyn FnMut(&str, Leaf, &mut Value) + 'a;

fn walk_table(table: &mut dyn TableLike, path: &str, visit: &mut Visit<'_>) {
    let slack = table.get("kind").and_then(Item::as_str) == Some("slack");
    for (key, item) in table.iter_mut() {
        let key = key.get().to_owned();
        let at = format!("{path}/{key}");
        if SECRET_MAPS.contains(&key.as_str()) {
            if let Some(map) = item.as_table_like_mut() {
                for (name, value) in map.iter_mut() {
                    if let Some(value) = item_str(value) {
                        visit(&format!("{at}/{}", name.get()), Leaf::Whole, value);
                    }
                }
            }
        } else if SECRET_SCALARS.contains(&key.as_str()) {
            if let Some(value) = item_str(item) {
                visit(&at, Leaf::Whole, value);
            }
        } else if key == "operator_tokens" {
            if let Some(Value::Array(tokens)) = item.as_value_mut() {
                for (index, value) in tokens.iter_mut().enumerate() {
                    visit(&format!("{at}/{index}"), Leaf::Whole, value);
                }
            }
        } else if key == "url" || key == "base_url" {
            if let Some(value) = item_str(item) {
                let whole = slack && key == "url";
                visit(&at, Leaf::Url { whole }, value);
            }
        } else {
            walk_item(item, &at, visit);
        }
    }
}

fn walk_item(item: &mut Item, path: &str, visit: &mut Visit<'_>) {
    match item {
        Item::Table(table) => walk_table(table, path, visit),
        Item::ArrayOfTables(tables) => {
            for (index, table) in tables.iter_mut().enumerate() {
                let at = element(path, table, index);
                walk_table(table, &at, visit);
            }
        }
        Item::Value(Value::InlineTable(table)) => walk_table(table, path, visit),
        Item::Value(Value::Array(values)) => {
            for (index, value) in values.iter_mut().enumerate() {
                if let Value::InlineTable(table) = value {
                    let at = element(path, table, index);
                    walk_table(table, &at, visit);
                }
            }
        }
        Item::Value(_) | Item::None => {}
    }
}

/// An array entry's path: by `name` when it has one (so entries match across
/// two versions of a file even when the order changed), else by index.
fn element(path: &str, table: &dyn TableLike, index: usize) -> String {
    match table.get("name").and_then(Item::as_str) {
        Some(name) => format!("{path}[{name}]"),
        None => format!("{path}[{index}]"),
    }
}

fn item_str(item: &mut Item) -> Option<&mut Value> {
    item.as_value_mut().filter(|value| value.is_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# keep this comment
[service]
operator_token = "op-token-inline-0123456789"  # trailing
operator_tokens = ["second-token-0123456789"]

[[notifiers]]
name = "chat"
kind = "slack"
url = "https://hooks.slack.com/services/T0/B0/SLACKKEY"

[[notifiers]]
name = "hook"
kind = "webhook"
url = "https://user:pw@example.com/h?key=QUERYKEY"
headers = { "X-Api-Key" = "HEADERKEY" }

[[components]]
name = "api"
env = { DB_PASSWORD = "ENVKEY" }
[components.fix]
action = { kind = "http", url = "http://127.0.0.1:1/fix", headers = { Authorization = "Bearer FIXKEY" } }
[[components.tiers]]
name = "agent"
kind = "webhook"
url = "https://agent.example.com/call"

[investigator]
api_key = "INVKEY"
"#;

    #[test]
    fn sealing_removes_every_inline_secret_and_keeps_the_rest() {
        let sealed = seal(TEXT);
        for secret in [
            "op-token-inline",
            "second-token",
            "SLACKKEY",
            "services/T0",
            "QUERYKEY",
            "user:pw",
            "HEADERKEY",
            "ENVKEY",
            "FIXKEY",
            "INVKEY",
        ] {
            assert!(!sealed.contains(secret), "{secret} in {sealed}");
        }
        assert!(sealed.contains("# keep this comment"));
        assert!(sealed.contains("# trailing"));
        assert!(sealed.contains("https://agent.example.com/call"));
        assert!(sealed.contains("https://hooks.slack.com/***"));
        assert!(sealed.contains("https://***@example.com/h?***"));
        // A configuration without inline secrets is kept byte for byte.
        let plain = "[service]\nstate_dir = \"/x\"  # here\n";
        assert_eq!(seal(plain), plain);
    }

    #[test]
    fn unsealing_takes_secrets_from_the_current_text_or_leaves_them_empty() {
        let sealed = seal(TEXT);
        assert_eq!(unseal(&sealed, TEXT), TEXT);
        let changed = TEXT
            .replace("HEADERKEY", "OTHER")
            .replace("\"api\"", "\"web\"");
        let back = unseal(&sealed, &changed);
        assert!(back.contains("\"X-Api-Key\" = \"OTHER\""), "{back}");
        assert!(back.contains("DB_PASSWORD = \"\""), "{back}");
        assert!(!back.contains(REDACTED), "{back}");
        // Without inline secrets, both directions keep the text byte for byte.
        let plain =
            "[service]\nstate_dir = \"/x\"\n\n[[probes]]\nname = \"good\"\nkind = \"heartbeat\"\n";
        assert_eq!(unseal(&seal(plain), &plain.replace("good", "new")), plain);
    }
}
