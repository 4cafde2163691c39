//! What other domains do when a station reports a bank leaving or entering a
//! slot. They register hooks at start-up (`server::build_state`); the link
//! calls them inside the transaction that applies the station's message, so
//! their changes commit with it or not at all, and the station link names no
//! domain above it.

use std::sync::Arc;

use rusqlite::Transaction;

use crate::core::ApiError;

/// A bank left a slot (`ejected`), with what the station left out filled in
/// from the database.
#[derive(Debug, Clone, Copy)]
pub struct BankEjected<'a> {
    pub station_id: i64,
    /// The eject command's id, when the protocol echoes it.
    pub request_id: Option<&'a str>,
    pub slot: u16,
    pub power_bank: &'a str,
    /// When the link applied it (unix seconds).
    pub at: i64,
}

/// A bank went into a slot (`returned`).
#[derive(Debug, Clone, Copy)]
pub struct BankReturned<'a> {
    pub station_id: i64,
    pub slot: u16,
    pub power_bank: &'a str,
    pub at: i64,
}

type EjectedHook = Arc<dyn Fn(&Transaction<'_>, &BankEjected<'_>) -> Result<(), ApiError> + Send + Sync>;
type ReturnedHook = Arc<dyn Fn(&Transaction<'_>, &BankReturned<'_>) -> Result<(), ApiError> + Send + Sync>;

/// The hooks registered for each event, called in registration order. A hook
/// that fails fails the whole message, which is then not applied.
#[derive(Clone, Default)]
pub struct LinkHooks {
    ejected: Vec<EjectedHook>,
    returned: Vec<ReturnedHook>,
}

impl LinkHooks {
    pub fn on_ejected(
        mut self,
        hook: impl Fn(&Transaction<'_>, &BankEjected<'_>) -> Result<(), ApiError> + Send + Sync + 'static,
    ) -> Self {
        self.ejected.push(Arc::new(hook));
        self
    }

    pub fn on_returned(
        mut self,
        hook: impl Fn(&Transaction<'_>, &BankReturned<'_>) -> Result<(), ApiError> + Send + Sync + 'static,
    ) -> Self {
        self.returned.push(Arc::new(hook));
        self
    }

    pub(super) fn ejected(&self, tx: &Transaction<'_>, event: &BankEjected<'_>) -> Result<(), ApiError> {
        self.ejected.iter().try_for_each(|hook| hook(tx, event))
    }

    pub(super) fn returned(&self, tx: &Transaction<'_>, event: &BankReturned<'_>) -> Result<(), ApiError> {
        self.returned.iter().try_for_each(|hook| hook(tx, event))
    }
}
