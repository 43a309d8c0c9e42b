//! Macros that declare message structs and the message enums, so each field list is written
//! once and its encoding and decoding follow the declaration order.

/// Declares a message body struct whose wire form is its fields in order.
macro_rules! wire_struct {
    ($(#[$m:meta])* $name:ident;) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name;

        impl $crate::p9::wire::WireFormat for $name {
            fn encode(&self, _out: &mut Vec<u8>) -> Result<(), $crate::p9::wire::WireError> {
                Ok(())
            }

            fn decode(
                _r: &mut $crate::p9::wire::Reader<'_>,
            ) -> Result<Self, $crate::p9::wire::WireError> {
                Ok(Self)
            }
        }
    };
    ($(#[$m:meta])* $name:ident { $( $(#[$fm:meta])* $field:ident : $ty:ty ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $( $(#[$fm])* pub $field: $ty, )*
        }

        impl $crate::p9::wire::WireFormat for $name {
            fn encode(&self, out: &mut Vec<u8>) -> Result<(), $crate::p9::wire::WireError> {
                $( $crate::p9::wire::WireFormat::encode(&self.$field, out)?; )*
                Ok(())
            }

            fn decode(
                r: &mut $crate::p9::wire::Reader<'_>,
            ) -> Result<Self, $crate::p9::wire::WireError> {
                // Struct expression fields are evaluated in the order written: wire order.
                Ok(Self {
                    $( $field: <$ty as $crate::p9::wire::WireFormat>::decode(r)?, )*
                })
            }
        }
    };
}

/// Declares a message enum: one tuple variant per message struct, with its type number.
macro_rules! message_enum {
    (
        $(#[$m:meta])*
        $enum:ident { $( $(#[$vm:meta])* $variant:ident($ty:ident) = $code:path ),* $(,)? }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $enum {
            $( $(#[$vm])* $variant($ty), )*
        }

        impl $enum {
            /// The message's type number.
            pub fn msg_type(&self) -> u8 {
                match self {
                    $( $enum::$variant(_) => $code, )*
                }
            }

            /// Appends the message body (everything after the tag) to `out`.
            pub fn encode_body(
                &self,
                out: &mut Vec<u8>,
            ) -> Result<(), $crate::p9::wire::WireError> {
                match self {
                    $( $enum::$variant(m) => $crate::p9::wire::WireFormat::encode(m, out), )*
                }
            }

            /// Decodes the body of a message of type `ty` from `r`. Bytes left in `r`
            /// afterwards are the caller's to reject.
            pub fn decode_body(
                ty: u8,
                r: &mut $crate::p9::wire::Reader<'_>,
            ) -> Result<Self, $crate::p9::wire::WireError> {
                match ty {
                    $( $code => Ok($enum::$variant(
                        <$ty as $crate::p9::wire::WireFormat>::decode(r)?,
                    )), )*
                    _ => Err($crate::p9::wire::WireError::UnknownType(ty)),
                }
            }
        }

        $(
            impl From<$ty> for $enum {
                fn from(m: $ty) -> Self {
                    $enum::$variant(m)
                }
            }
        )*
    };
}
