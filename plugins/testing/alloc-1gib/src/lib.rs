//! Tries to allocate 1 GiB: `quote` with a plain `vec!` (aborts, so the guest
//! traps), `price-extension` with `try_reserve` (sees the refusal as an error).

use powerbank_plugin_sdk::pricing::{
    ExtensionRequest, Guest, LostPolicy, LostRequest, OverdueCharge, OverdueRequest, Quote, QuoteRequest,
};
use powerbank_plugin_sdk::{CallError, PluginInfo, PluginKind, plugin_info};

const ONE_GIB: usize = 1 << 30;

struct Alloc1Gib;

impl Guest for Alloc1Gib {
    fn info() -> PluginInfo {
        plugin_info!(PluginKind::Pricing)
    }

    fn self_check() -> Result<(), CallError> {
        Ok(())
    }

    fn quote(_request: QuoteRequest) -> Result<Quote, CallError> {
        // black_box stops the optimiser from eliding the unused allocation.
        let big = core::hint::black_box(vec![1u8; ONE_GIB]);
        Ok(Quote { amount_paisa: i64::from(big[ONE_GIB - 1]), breakdown: Vec::new(), due_minutes: 60 })
    }

    fn price_extension(_request: ExtensionRequest) -> Result<i64, CallError> {
        let mut big: Vec<u8> = Vec::new();
        big.try_reserve_exact(ONE_GIB).map_err(|e| CallError::Unavailable(format!("could not reserve 1 GiB: {e}")))?;
        Ok(core::hint::black_box(big).capacity() as i64)
    }

    fn overdue_charge(_request: OverdueRequest) -> Result<OverdueCharge, CallError> {
        Err(CallError::NotSupported("not implemented".to_string()))
    }

    fn lost_penalty(_request: LostRequest) -> Result<LostPolicy, CallError> {
        Err(CallError::NotSupported("not implemented".to_string()))
    }
}

powerbank_plugin_sdk::export_pricing!(Alloc1Gib);
