//! The ids an audit record carries, each its own type so an invoice id is
//! never passed where an action id is meant.
//!
//! Each is a string underneath and is written as the bare string
//! (`#[serde(transparent)]`): records stored before the types existed read
//! back unchanged. They borrow as `&str`, so a map keyed by one is looked
//! up with a plain `&str`, and they compare with strings directly.

use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Box<str>);

        impl $name {
            pub fn new(id: impl Into<Box<str>>) -> $name {
                $name(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> $name {
                $name(id.into_boxed_str())
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> $name {
                $name(id.into())
            }
        }

        impl From<&String> for $name {
            fn from(id: &String) -> $name {
                $name(id.as_str().into())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.into_string()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                &*self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                &*self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                *self.0 == **other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == &*other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == &*other.0
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                **self == *other.0
            }
        }
    };
}

id_type!(
    /// An action's id: deterministic, `act-` and 20 hex digits (see
    /// [`crate::sweep::action_id`]).
    ActionId
);
id_type!(
    /// An invoice's id, as the ERP exports it.
    InvoiceId
);
id_type!(
    /// A customer's id, as the ERP exports it.
    CustomerId
);
id_type!(
    /// A message's id: `msg-` and the digest of the actions it carries (see
    /// [`crate::sweep::message_id`]).
    MessageId
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn an_id_is_written_as_its_bare_string_and_looked_up_by_str() {
        let id = ActionId::from("act-1".to_string());
        assert_eq!(
            serde_json::to_string(&id).ok().as_deref(),
            Some("\"act-1\"")
        );
        let back: Result<ActionId, _> = serde_json::from_str("\"act-1\"");
        assert_eq!(back.ok(), Some(id.clone()));
        let mut by_id: HashMap<ActionId, u32> = HashMap::new();
        by_id.insert(id.clone(), 7);
        assert_eq!(by_id.get("act-1"), Some(&7));
        let owned = String::from("act-1");
        assert_eq!(id, "act-1");
        assert_eq!("act-1", id);
        assert_eq!(id, owned);
        assert_eq!(owned, id);
        assert_eq!(format!("{id} {id:?}"), "act-1 \"act-1\"");
        assert_eq!(String::from(id), "act-1");
    }
}
