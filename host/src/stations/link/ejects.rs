//! Eject commands waiting for the station's answer, and matching answers
//! to them.

use powerbank_plugin_runtime::types::StationEvent;
use tokio::sync::oneshot;

use super::StationLink;

/// The outcome of an eject command, as the station reported it.
#[derive(Debug, Clone, PartialEq)]
pub enum EjectOutcome {
    Ejected { power_bank: String },
    Failed { reason: String },
}

/// An eject waiting for the station's answer. Protocols that echo the
/// request id are matched by it; the others by the bank or slot.
pub(super) struct Waiter {
    pub(super) request_id: String,
    pub(super) device_id: String,
    pub(super) slot: u16,
    pub(super) power_bank: Option<String>,
    pub(super) tx: oneshot::Sender<EjectOutcome>,
}

impl StationLink {
    pub(super) fn waiters_lock(&self) -> std::sync::MutexGuard<'_, Vec<Waiter>> {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl StationLink {
    /// Hands an eject answer to the command waiting for it: by request id
    /// when the protocol echoes it, else by the station and its bank or slot.
    pub(super) fn settle_waiter(&self, device_id: &str, event: &StationEvent) {
        let (request_id, slot, bank) = match event {
            StationEvent::Ejected(e) => (&e.request_id, Some(e.slot), &e.power_bank),
            StationEvent::EjectFailed(e) => (&e.request_id, e.slot, &e.power_bank),
            _ => return,
        };
        let mut waiters = self.waiters_lock();
        let found = match request_id {
            Some(id) => waiters.iter().position(|w| &w.request_id == id),
            None => waiters.iter().position(|w| {
                w.device_id == device_id
                    && match (bank, &w.power_bank, slot) {
                        (Some(bank), Some(expected), _) => bank == expected,
                        (_, _, Some(slot)) => slot == w.slot,
                        // Neither bank nor slot: only an unambiguous waiter.
                        _ => waiters.iter().filter(|o| o.device_id == device_id).count() == 1,
                    }
            }),
        };
        let Some(index) = found else { return };
        let waiter = waiters.swap_remove(index);
        let outcome = match event {
            StationEvent::Ejected(e) => match e.power_bank.clone().or(waiter.power_bank) {
                Some(power_bank) => EjectOutcome::Ejected { power_bank },
                None => EjectOutcome::Failed { reason: "the station ejected from a slot with no known bank".into() },
            },
            StationEvent::EjectFailed(e) => EjectOutcome::Failed { reason: e.reason.clone() },
            _ => return,
        };
        let _ = waiter.tx.send(outcome);
    }
}
