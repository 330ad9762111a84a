//! `[events]`: how long an event created through `/jars/create` lives.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::describe::duration;
use super::{positive, ConfigError};

/// The resolved `[events]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventSettings {
    #[serde(serialize_with = "duration")]
    pub lifetime: Duration,
}

/// `[events]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileEvents {
    #[serde(with = "humantime_serde")]
    pub(super) lifetime: Option<Duration>,
}

/// Validates `[events]` and fills in its defaults.
pub(super) fn resolve(f: FileEvents) -> Result<EventSettings, ConfigError> {
    Ok(EventSettings {
        lifetime: positive(
            "events.lifetime",
            f.lifetime,
            Duration::from_secs(10 * 24 * 3600),
        )?,
    })
}
