//! What `jars check-config` prints: the resolved [`Config`] serialised with its secrets
//! redacted, flattened to one `section.key  value` line per setting. The serde helpers the
//! settings use for that (durations, secrets, lists) live here too.

use std::fmt::Display;
use std::time::Duration;

use serde::Serializer;
use serde_json::Value;

use super::Config;

/// A duration the way one would write it in the file: `24h`, `10d`, `90s`, `1.5s`.
pub(super) fn duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_duration(*d))
}

fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() == 0 && secs > 0 {
        // The largest unit that divides it; days only from two on (`24h` reads better than `1d`).
        for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
            if secs % len == 0 && (unit != "d" || secs >= 2 * len) {
                return format!("{}{unit}", secs / len);
            }
        }
        return format!("{secs}s");
    }
    if d.subsec_nanos() % 1_000_000 == 0 {
        // Whole milliseconds: `1.5s`, `0.25s`.
        return format!("{}s", d.as_secs_f64());
    }
    humantime::format_duration(d).to_string()
}

/// A secret: only whether it is set.
pub(super) fn secret<S: Serializer>(value: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if value.is_empty() { "(unset)" } else { "(set)" })
}

/// An optional secret: only whether it is set.
pub(super) fn secret_opt<S: Serializer>(value: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    secret(value.as_deref().unwrap_or_default(), s)
}

/// A list of things that print themselves (addresses, ranges).
pub(super) fn display_list<S: Serializer, T: Display>(
    items: &[T],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(items.iter().map(|i| i.to_string()))
}

/// One `key  value` line per setting of `config`, secrets redacted.
pub(super) fn lines(config: &Config) -> String {
    let mut out = Vec::new();
    match serde_json::to_value(config) {
        Ok(value) => flatten("", &value, &mut out),
        // Only a path that is not UTF-8 gets here.
        Err(e) => out.push(("config".into(), format!("(cannot be printed: {e})"))),
    }
    let width = out.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    out.iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect()
}

fn flatten(key: &str, value: &Value, out: &mut Vec<(String, String)>) {
    let scalar = |v: &Value| match v {
        Value::Null => "(unset)".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if key.is_empty() {
                    k.clone()
                } else {
                    format!("{key}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Array(items) if items.is_empty() => out.push((key.into(), "(none)".into())),
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            let joined: Vec<String> = items.iter().map(scalar).collect();
            out.push((key.into(), joined.join(", ")));
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{key}[{i}]"), v, out);
            }
        }
        other => out.push((key.into(), scalar(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::toml_for_test as toml;
    use super::*;

    #[test]
    fn durations_print_as_one_would_write_them() {
        let cases = [
            (Duration::from_secs(86_400), "24h"),
            (Duration::from_secs(10 * 86_400), "10d"),
            (Duration::from_secs(3_600), "1h"),
            (Duration::from_secs(600), "10m"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_millis(1_500), "1.5s"),
            (Duration::from_millis(250), "0.25s"),
        ];
        for (d, text) in cases {
            assert_eq!(format_duration(d), text);
            // What is printed reads back as the same duration.
            assert_eq!(humantime::parse_duration(text).unwrap(), d, "{text}");
        }
    }

    #[test]
    fn one_line_per_setting_without_secrets() {
        let c = toml(
            "[identity]\nbackend = \"myradio\"\n[identity.myradio]\n\
             api_url = \"https://myradio.example/api\"\napi_key = \"the-api-key\"\n\
             [store]\nurl = \"postgres://jars:db-password@db/jars\"\n\
             [icecast]\nusername = \"icecast\"\npassword = \"callback-password\"\n\
             token_params = [\"token\"]\n\
             [[icecast.trusted_sources]]\nuser = \"relay\"\npassword = \"relay-password\"\n",
        )
        .unwrap();
        let text = c.describe();
        for secret in [
            "the-api-key",
            "db-password",
            "callback-password",
            "relay-password",
        ] {
            assert!(!text.contains(secret), "{secret} printed: {text}");
        }
        let line = |key: &str| {
            text.lines()
                .find(|l| l.split_whitespace().next() == Some(key))
                .map(|l| l[key.len()..].trim().to_string())
                .unwrap_or_else(|| panic!("no {key} in {text}"))
        };
        assert_eq!(line("listen"), "127.0.0.1:8888");
        assert_eq!(line("config_file"), "(unset)");
        assert_eq!(line("tokens.lifetime"), "24h");
        assert_eq!(line("identity.backend"), "myradio");
        assert_eq!(line("identity.myradio.api_key"), "(set)");
        assert_eq!(line("store.url"), "postgres://jars:***@db/jars");
        assert_eq!(line("store.acquire_timeout"), "1.5s");
        assert_eq!(line("icecast.password"), "(set)");
        assert_eq!(line("icecast.token_params"), "token");
        assert_eq!(line("icecast.mounts"), "(none)");
        assert_eq!(line("icecast.trusted_sources[0].user"), "relay");
        assert_eq!(line("icecast.trusted_sources[0].password"), "(set)");
        assert_eq!(line("events.lifetime"), "10d");
    }
}
