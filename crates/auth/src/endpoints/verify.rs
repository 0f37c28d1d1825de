//! `POST /api/token/verify/`: simplejwt's `TokenVerifyView`.
//!
//! Any type of token (simplejwt's `UntypedToken`): signature, claims, `exp`
//! and id. A blacklisted token is refused as a validation error (400), and
//! only when BLACKLIST_AFTER_ROTATION is on, as simplejwt does.

use crate::compat::drf::{validate_fields, Data, FieldMeta};
use crate::compat::pyjson::{Object, Value};
use crate::error::AuthError;
use crate::tokens::{self, Token, TokenError};
use crate::State;

/// The view's name in `OPTIONS`.
pub const NAME: &str = "Token Verify";
/// The view's docstring, dedented.
pub const DESCRIPTION: &str = "Takes a token and indicates if it is valid.  This view provides no\ninformation about a token's fitness for a particular use.";
/// The serializer's fields.
pub const FIELDS: &[FieldMeta] = &[FieldMeta {
    name: "token",
    read_only: false,
}];

/// Handles the POST.
pub async fn post(state: &State, data: Data) -> Result<Value, AuthError> {
    let raw = validate_fields(&data, &["token"])?.remove(0);
    let settings = &state.settings;
    let now = tokens::now();
    let payload = tokens::decode(raw.as_bytes(), &state.keys, settings, now)
        .map_err(AuthError::InvalidToken)?;
    tokens::verify(&payload, settings, None, now).map_err(AuthError::InvalidToken)?;
    if settings.blacklist_after_rotation {
        if let Some(jti) = Token::from_payload(payload, now).jti(settings) {
            if state.store.is_blacklisted(&jti).await? {
                crate::metrics::get().rejected(&TokenError::Blacklisted);
                return Err(AuthError::Validation(vec![(
                    "non_field_errors".into(),
                    vec!["Token is blacklisted".into()],
                )]));
            }
        }
    }
    crate::metrics::get().tokens(crate::metrics::Tokens::Verify);
    Ok(Value::Object(Object::new()))
}
