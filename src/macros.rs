//! Crate-private macros: logging that compiles to nothing without the `log` feature, and
//! on-wire enumerations that keep unknown values.
#![allow(unused_macros)]

/// Trace-level message through `log` when the `log` feature is on, through `defmt` when the
/// `defmt` feature is (the format string then follows defmt's syntax, which for `{}`, `{:?}` and
/// `{:#04x}` is the same, and every argument implements `defmt::Format`); otherwise the
/// arguments are evaluated for side effects only and nothing is printed.
#[cfg(feature = "log")]
macro_rules! net_trace {
    ($($arg:tt)*) => { log::trace!(target: "netbt", $($arg)*) };
}

#[cfg(feature = "defmt")]
macro_rules! net_trace {
    ($($arg:tt)*) => { defmt::trace!($($arg)*) };
}

#[cfg(not(any(feature = "log", feature = "defmt")))]
macro_rules! net_trace {
    ($($arg:tt)*) => {{ let _ = format_args!($($arg)*); }};
}

/// Debug-level message; see [`net_trace!`].
#[cfg(feature = "log")]
macro_rules! net_debug {
    ($($arg:tt)*) => { log::debug!(target: "netbt", $($arg)*) };
}

#[cfg(feature = "defmt")]
macro_rules! net_debug {
    ($($arg:tt)*) => { defmt::debug!($($arg)*) };
}

#[cfg(not(any(feature = "log", feature = "defmt")))]
macro_rules! net_debug {
    ($($arg:tt)*) => {{ let _ = format_args!($($arg)*); }};
}

/// Declares an enumeration of on-wire values that maps every known value to a variant and
/// every other value to `Unknown(raw)`, with `From` conversions in both directions.
macro_rules! wire_enum {
    (
        $(#[$attr:meta])*
        pub enum $name:ident($raw:ty) {
            $( $(#[$vattr:meta])* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub enum $name {
            $( $(#[$vattr])* $variant, )+
            /// A value this crate does not know; the raw value is kept.
            Unknown($raw),
        }

        impl From<$raw> for $name {
            fn from(raw: $raw) -> Self {
                match raw {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $raw {
            fn from(value: $name) -> $raw {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}

/// The words a log gives each variant of an enum: `fn WORDS(&self) -> &'static str` and, with
/// the `defmt` feature, `fn FORMAT(&self, defmt::Formatter)`, which writes the same words as
/// defmt interned strings (kept in the ELF, not in flash).
///
/// `words! { /// doc  pub fn description / format_description for Type { pattern => "words", ... } }`
macro_rules! words {
    (
        $(#[$attr:meta])*
        $vis:vis fn $words:ident / $format:ident for $ty:ty {
            $( $pattern:pat => $text:literal ),+ $(,)?
        }
    ) => {
        impl $ty {
            $(#[$attr])*
            $vis fn $words(&self) -> &'static str {
                match self {
                    $( $pattern => $text, )+
                }
            }

            #[doc = concat!("Writes [`Self::", stringify!($words), "`] through defmt, as interned strings.")]
            #[cfg(feature = "defmt")]
            $vis fn $format(&self, f: defmt::Formatter<'_>) {
                match self {
                    $( $pattern => defmt::write!(f, $text), )+
                }
            }
        }
    };
}

/// `Display` and, with the `defmt` feature, `defmt::Format` for an enum's log line, from one list
/// of arms: a pattern (with an optional guard) and the format string with its arguments, which
/// are written in the syntax both take (positional `{}` arguments) and implement both traits.
/// So a firmware's defmt frames and a daemon's text say the same words.
///
/// `log_text! { /// doc  Type { pattern => ("words {}", argument), ... } }`
macro_rules! log_text {
    (
        $(#[$attr:meta])*
        $ty:ty {
            $( $(#[$arm:meta])* $pattern:pat $(if $guard:expr)? => ($($line:tt)*) ),+ $(,)?
        }
    ) => {
        impl core::fmt::Display for $ty {
            $(#[$attr])*
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self {
                    $( $(#[$arm])* $pattern $(if $guard)? => write!(f, $($line)*), )+
                }
            }
        }

        #[cfg(feature = "defmt")]
        impl defmt::Format for $ty {
            $(#[$attr])*
            fn format(&self, f: defmt::Formatter<'_>) {
                match self {
                    $( $(#[$arm])* $pattern $(if $guard)? => defmt::write!(f, $($line)*), )+
                }
            }
        }
    };
}
