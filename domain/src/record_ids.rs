//! Ids of stored records (an application, a payment, a citizen, …): opaque text the
//! database made or was given, typed so that one kind cannot be passed where another is
//! expected (docs/architecture.md, "The database layer"). Unlike the identifiers in
//! [`crate::ids`] nobody types them, so any text is accepted; they serialise as that text.

use serde::{Deserialize, Serialize};

use crate::ids::text_newtype;

macro_rules! record_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        text_newtype!($name);
        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
        impl From<&$name> for String {
            fn from(id: &$name) -> String {
                id.0.clone()
            }
        }
        /// Read as its text wherever text is asked for (the other way needs a conversion).
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
        /// Looked up by its text in maps keyed by the id (hashes and orders as its text).
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

record_id!(
    /// An application (one card cycle of a citizen): `applications.id`.
    ApplicationId
);
record_id!(
    /// One payment attempt: `payments.id`.
    PaymentId
);
record_id!(
    /// A citizen who entered (one per national code): `citizens.id`, and the subject of
    /// their sessions.
    CitizenId
);
record_id!(
    /// A fee owed back after a withdrawal: `refunds.id`.
    RefundId
);
record_id!(
    /// An office (enrollment, delivery, home visits): `offices.id`, in URLs and the
    /// catalog as the same text.
    OfficeId
);
record_id!(
    /// A staff account (operator or administrator): `staff_users.id`, the subject of its tokens.
    StaffId
);
record_id!(
    /// A national e-folder account: `efolder_accounts.id`, the subject of its tokens.
    AccountId
);
record_id!(
    /// A machine client (kiosk or card production system), named by the administrator who
    /// registered it: `clients.client_id`, the subject of its tokens.
    ClientId
);
