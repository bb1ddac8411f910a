//! Proptest strategies for wire values, shared by the unit tests of every codec.

use proptest::prelude::*;

use super::name::{Name, NbName, Scope};

/// Any 16-byte name.
pub fn name() -> impl Strategy<Value = Name> {
    any::<[u8; 16]>().prop_map(Name::from_bytes)
}

/// A scope of up to three short labels of arbitrary bytes (or none).
pub fn scope() -> impl Strategy<Value = Scope> {
    prop_oneof![
        2 => Just(Scope::NONE),
        1 => proptest::collection::vec("[A-Z0-9-]{1,20}", 1..4)
            .prop_map(|labels| Scope::parse_text(&labels.join(".")).unwrap()),
    ]
}

/// A name with a scope.
pub fn nb_name() -> impl Strategy<Value = NbName> {
    (name(), scope()).prop_map(|(name, scope)| NbName::new(name, scope))
}
