//! `data:` URLs, as OpenAI-format clients send inline images and files.

use loom_core::LoomError;

/// Splits `data:TYPE;base64,DATA` into (TYPE, DATA); `None` for other URLs; an error
/// naming `param` for a data URL that is not base64.
pub(crate) fn split_data_url<'u>(url: &'u str, param: &str) -> Result<Option<(&'u str, &'u str)>, LoomError> {
    let Some(rest) = url.strip_prefix("data:") else { return Ok(None) };
    let split = rest.split_once(";base64,").ok_or_else(|| {
        LoomError::invalid_request(
            "A data URL must be base64 (`data:TYPE;base64,...`)",
            Some(param.to_owned()),
        )
    })?;
    Ok(Some(split))
}
