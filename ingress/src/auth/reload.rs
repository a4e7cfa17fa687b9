//! The partners table in force, replaced whole when the partners file is reloaded.
//!
//! Key rotation must not need a restart (a restart drops every partner connection), so
//! the table lives behind an [`ArcSwap`]: a request takes the table current at its start
//! and keeps it to its end, and a reload swaps in a new table atomically, so no request
//! ever sees half of an old file and half of a new one. A file that does not load keeps
//! the table in force: a typo during a rotation must not lock every partner out.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::{LoadError, Partners};
use crate::metrics;

pub struct LivePartners {
    path: PathBuf,
    current: ArcSwap<Partners>,
}

impl LivePartners {
    /// Loads the file at `path` for the first time; an error here stops startup.
    pub fn load(path: &Path) -> Result<LivePartners, LoadError> {
        let partners = Partners::load(path)?;
        Ok(LivePartners::new(path, partners))
    }

    pub fn new(path: &Path, partners: Partners) -> LivePartners {
        LivePartners {
            path: path.to_owned(),
            current: ArcSwap::from_pointee(partners),
        }
    }

    /// The table in force now. Callers hold it for one request, never longer, so an old
    /// table is freed as soon as the requests that started under it have finished.
    pub fn current(&self) -> Arc<Partners> {
        self.current.load_full()
    }

    /// Re-reads the file and swaps the new table in; on any error the table in force
    /// stays. Blocking (it reads a file): call it off the async workers.
    pub fn reload(&self) -> Result<usize, LoadError> {
        match Partners::load(&self.path) {
            Ok(partners) => {
                let count = partners.len();
                self.current.store(Arc::new(partners));
                metrics::partners_reloaded("ok");
                tracing::info!(partners = count, path = %self.path.display(), "partners reloaded");
                Ok(count)
            }
            Err(error) => {
                metrics::partners_reloaded("error");
                tracing::error!(
                    %error,
                    "partners file not reloaded; the previous partners stay in force"
                );
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sha256_hex;

    fn file_with(secret: &str) -> String {
        format!(
            r#"{{"partners": [{{"partner_id": "ota-1", "key_sha256": "{}",
                "tenants": ["*"], "scopes": ["bookings:write"]}}]}}"#,
            sha256_hex(secret.as_bytes())
        )
    }

    #[test]
    fn a_good_file_replaces_the_table_and_a_bad_one_keeps_it() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), file_with("old")).unwrap();
        let live = LivePartners::load(file.path()).unwrap();
        let before = live.current();
        assert!(before.find(b"old").is_some());

        std::fs::write(file.path(), file_with("new")).unwrap();
        assert_eq!(live.reload().unwrap(), 1);
        assert!(live.current().find(b"new").is_some());
        assert!(live.current().find(b"old").is_none());
        // A request that started before the reload still holds the table it started with.
        assert!(before.find(b"old").is_some());

        std::fs::write(file.path(), "{not json").unwrap();
        assert!(live.reload().is_err());
        assert!(live.current().find(b"new").is_some());
    }
}
