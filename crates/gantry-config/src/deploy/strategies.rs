//! The one list of deploy strategies, and what the config generates from it.

use serde::{Deserialize, Serialize};

/// Calls `$callback!` with every deploy strategy, one `Variant = "name" => file::Type` line
/// each, the first being the default. This list is the registry: the config generates
/// [`DeployStrategy`], its names and the check of `strategy:` from it, and `gantry-deploy`
/// (in `strategies/mod.rs`, where `file::Type` names the strategy's file and type) the
/// construction of each strategy from the checked spec, so a registered strategy without
/// an implementation does not compile. Adding a strategy is its file in `gantry-deploy`'s
/// `strategies/` and one line here.
#[macro_export]
macro_rules! with_deploy_strategies {
    ($callback:ident) => {
        $callback! {
            Redblack = "redblack" => redblack::RedBlack,
            Highlander = "highlander" => highlander::Highlander,
            Rolling = "rolling" => rolling::Rolling,
            Canary = "canary" => canary::Canary,
            None = "none" => none::NoStrategy,
        }
    };
}

macro_rules! define_deploy_strategy {
    (
        $default:ident = $default_name:literal => $default_impl:path,
        $($variant:ident = $name:literal => $implementation:path,)*
    ) => {
        /// How a deploy replaces the older server groups (`strategy:`); unset, the first
        /// of the registry.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub enum DeployStrategy {
            #[default]
            #[serde(rename = $default_name)]
            $default,
            $(
                #[serde(rename = $name)]
                $variant,
            )*
        }

        impl DeployStrategy {
            /// Every `strategy:` name, in registry order.
            pub const NAMES: &'static [&'static str] = &[$default_name, $($name),*];

            /// The name as written in the file.
            pub fn name(self) -> &'static str {
                match self {
                    DeployStrategy::$default => $default_name,
                    $(DeployStrategy::$variant => $name,)*
                }
            }
        }
    };
}

crate::with_deploy_strategies!(define_deploy_strategy);
