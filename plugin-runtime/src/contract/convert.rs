//! Conversions between the bindings of two contract versions.
//!
//! Each version's bindings are their own Rust types, even where the WIT did
//! not change, so an older version's adapter converts every value it passes.
//! `Convert` does it field by field; the macros below write the impls for
//! records, variants and enums that kept their shape, so an adapter spells
//! out only what really changed. A change to a current type breaks the
//! compile of every conversion that touches it, which is the point: the
//! compiler lists what a new contract version must adapt.

/// `self` as the same value in another version's type.
pub(crate) trait Convert<T> {
    fn convert(self) -> T;
}

/// Plain values are the same in every version.
macro_rules! same_value {
    ($($ty:ty),* $(,)?) => {
        $(impl Convert<$ty> for $ty {
            fn convert(self) -> $ty {
                self
            }
        })*
    };
}

same_value!(bool, u8, u16, u32, u64, i64, String);

impl<A: Convert<B>, B> Convert<Vec<B>> for Vec<A> {
    fn convert(self) -> Vec<B> {
        self.into_iter().map(Convert::convert).collect()
    }
}

impl<A: Convert<B>, B> Convert<Option<B>> for Option<A> {
    fn convert(self) -> Option<B> {
        self.map(Convert::convert)
    }
}

impl<A: Convert<C>, B: Convert<D>, C, D> Convert<(C, D)> for (A, B) {
    fn convert(self) -> (C, D) {
        (self.0.convert(), self.1.convert())
    }
}

impl<A: Convert<C>, B: Convert<D>, C, D> Convert<Result<C, D>> for Result<A, B> {
    fn convert(self) -> Result<C, D> {
        self.map(Convert::convert).map_err(Convert::convert)
    }
}

/// Records with the same fields in both versions, converted both ways:
/// `same_records!(old => new { Quote { amount_paisa, breakdown } })`.
macro_rules! same_records {
    ($old:ident => $new:ident { $($ty:ident { $($field:ident),* $(,)? })* }) => {
        $(
            impl Convert<$new::$ty> for $old::$ty {
                fn convert(self) -> $new::$ty {
                    $new::$ty { $($field: self.$field.convert()),* }
                }
            }
            impl Convert<$old::$ty> for $new::$ty {
                fn convert(self) -> $old::$ty {
                    $old::$ty { $($field: self.$field.convert()),* }
                }
            }
        )*
    };
}

/// Variants and enums with the same cases in both versions, converted both
/// ways; a case lists its payload in parentheses:
/// `same_variants!(old => new { CouponDiscount { PercentageBp(x), FixedPaisa(x) } })`.
macro_rules! same_variants {
    ($old:ident => $new:ident { $($ty:ident { $($case:ident $(($payload:ident))?),* $(,)? })* }) => {
        $(
            impl Convert<$new::$ty> for $old::$ty {
                fn convert(self) -> $new::$ty {
                    match self {
                        $($old::$ty::$case $(($payload))? => $new::$ty::$case $(($payload.convert()))?),*
                    }
                }
            }
            impl Convert<$old::$ty> for $new::$ty {
                fn convert(self) -> $old::$ty {
                    match self {
                        $($new::$ty::$case $(($payload))? => $old::$ty::$case $(($payload.convert()))?),*
                    }
                }
            }
        )*
    };
}

pub(crate) use {same_records, same_variants};
