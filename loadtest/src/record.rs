//! What a load run acknowledged, written to a JSON file so the store can be checked
//! against it after the run.

use std::path::Path;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Everything the verifier needs to know about one run.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub tenant_id: String,
    /// Every event the ingress acknowledged with a 2xx.
    pub acked: Vec<AckedEvent>,
    /// Booking ids of creates the ingress refused with a 4xx: none may exist in the store.
    pub refused_booking_ids: Vec<Uuid>,
    /// The contended night: its allotment must be sold exactly, never beyond.
    pub contention: Option<Contention>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AckedEvent {
    pub kind: EventKind,
    pub event_id: Uuid,
    pub booking_id: Option<Uuid>,
    pub property_id: String,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Allotment,
    Create,
    Modify,
    Cancel,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Contention {
    pub property_id: String,
    pub room_type: String,
    pub night: chrono::NaiveDate,
    pub rooms: u32,
    pub requests: usize,
}

impl RunRecord {
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_vec_pretty(self)?)
    }

    pub fn load(path: &Path) -> std::io::Result<Self> {
        Ok(serde_json::from_slice(&std::fs::read(path)?)?)
    }
}
