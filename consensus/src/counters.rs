//! The `counters!` macro every protocol's `counters.rs` declares its counters with.

/// Declares `pub struct Counters` with one documented `pub u64` field per name (a
/// replica's monotonic counters) and `Counters::pairs`, the `(name, value)` pairs in
/// declaration order that `Protocol::counters` returns.
macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Monotonic counters of a replica.
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct Counters {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl Counters {
            /// `(name, value)` pairs in declaration order.
            pub fn pairs(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name),)*]
            }
        }
    };
}
