//! Guest bindings of `wit/compat/0.3.0` (`powerbank:plugins@0.3.0`), laid
//! out as the 0.3 SDK had them: `pricing` generates the shared interfaces,
//! the promotions world reuses them. Only the world 0.4 changed is here.

// Lets generated code name this crate by its external path from inside it too.
extern crate self as contract_v0_3_bindings;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

#[allow(clippy::too_many_arguments)] // generated code
pub mod pricing {
    wit_bindgen::generate!({
        world: "pricing",
        path: "../../../../wit/compat/0.3.0",
        pub_export_macro: true,
        export_macro_name: "export_pricing",
        default_bindings_module: "contract_v0_3_bindings::pricing",
        runtime_path: "contract_v0_3_bindings::__wit_bindgen::rt",
        generate_all,
    });
    pub use powerbank::plugins::types::PluginKind;
}

#[allow(clippy::too_many_arguments)] // generated code
pub mod promotions {
    wit_bindgen::generate!({
        world: "promotions",
        path: "../../../../wit/compat/0.3.0",
        pub_export_macro: true,
        export_macro_name: "export_promotions",
        default_bindings_module: "contract_v0_3_bindings::promotions",
        runtime_path: "contract_v0_3_bindings::__wit_bindgen::rt",
        with: {
            "powerbank:plugins/types@0.3.0": crate::pricing::powerbank::plugins::types,
            "powerbank:plugins/host@0.3.0": crate::pricing::powerbank::plugins::host,
        },
        generate_all,
    });
    pub use crate::pricing::powerbank::plugins::types::PluginKind;
    pub use powerbank::plugins::promotion_types::*;
}

pub use pricing::powerbank::plugins::host;

/// This plugin's info, as a 0.3 plugin gave it.
#[macro_export]
macro_rules! plugin_info {
    ($kind:expr, $display:expr) => {
        $crate::pricing::PluginInfo {
            name: ::core::env!("CARGO_PKG_NAME").to_string(),
            version: ::core::env!("CARGO_PKG_VERSION").to_string(),
            kind: $kind,
            display_name: $display.to_string(),
            icon_url: None,
        }
    };
}

pub use promotions::export_promotions;
