//! Gateway payments of purposes other than top-ups: the domain that sells
//! something through a gateway (rentals) registers a [`PurposeHandler`] at
//! start-up (`server::build_state`), and the intent machinery hands it the
//! payment, or the news that it ended unpaid, inside the transaction that
//! changes the intent. So payments names no domain above it.

use std::{collections::HashMap, sync::Arc};

use rusqlite::Transaction;

use super::intents::{IntentPurpose, IntentStatus};
use crate::{core::ApiError, ledger::TransactionKind};

/// A paid intent of a registered purpose, as its handler hears of it.
#[derive(Debug, Clone, Copy)]
pub struct IntentPaid<'a> {
    pub intent_id: &'a str,
    pub user_id: i64,
    /// The ledger transaction recording the payment.
    pub transaction_id: i64,
    pub amount_paisa: i64,
}

/// What a domain that sells through gateway payments tells payments about
/// its purpose. Both calls run inside the transaction that changes the
/// intent, so the domain's own state changes with it or not at all.
pub trait PurposeHandler: Send + Sync + 'static {
    /// How the payment is recorded in the ledger.
    fn transaction_kind(&self) -> TransactionKind;
    /// The payment's description, before ` via <gateway>`.
    fn description(&self) -> &'static str;
    /// The intent was paid in full, once (see the module docs).
    fn paid(&self, tx: &Transaction<'_>, payment: IntentPaid<'_>) -> Result<(), ApiError>;
    /// The intent ended unpaid: `Expired`, `Cancelled` or `Failed`.
    fn ended(&self, tx: &Transaction<'_>, intent_id: &str, status: IntentStatus) -> Result<(), ApiError>;
}

/// The purposes other domains registered, by `payment_intents.purpose`.
#[derive(Clone, Default)]
pub struct PaymentPurposes {
    handlers: Arc<HashMap<IntentPurpose, Arc<dyn PurposeHandler>>>,
}

impl PaymentPurposes {
    /// Registers the handler of `purpose` (at start-up; a second one replaces the first).
    pub fn with(mut self, purpose: IntentPurpose, handler: impl PurposeHandler) -> Self {
        let mut handlers = (*self.handlers).clone();
        handlers.insert(purpose, Arc::new(handler));
        self.handlers = Arc::new(handlers);
        self
    }

    pub(super) fn handler(&self, purpose: IntentPurpose) -> Result<&dyn PurposeHandler, ApiError> {
        self.handlers
            .get(&purpose)
            .map(|h| h.as_ref())
            .ok_or_else(|| ApiError::internal(format!("no handler registered for {purpose} payments")))
    }
}
