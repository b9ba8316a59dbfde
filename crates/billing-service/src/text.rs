//! The rules for free-text input: trimmed, bounded, empty meaning absent.

use crate::BillingError;

/// `value` trimmed, refused when blank or longer than `max_chars` as sent
/// (the schema's `maxLength` and [`crate::rules::required_text_pattern`]).
pub(crate) fn valid_text(
    field: &str,
    value: &str,
    max_chars: usize,
) -> Result<String, BillingError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || value.chars().count() > max_chars {
        return Err(BillingError::invalid(format!(
            "{field} must be 1 to {max_chars} characters, not blank"
        )));
    }
    Ok(trimmed.to_owned())
}

/// `value` trimmed; `None` when absent or blank.
pub(crate) fn optional_text(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// `value` trimmed; `None` when absent or blank; refused when longer than
/// `max_chars` (the column's length) as sent.
pub(crate) fn optional_bounded_text(
    field: &str,
    value: Option<&str>,
    max_chars: usize,
) -> Result<Option<String>, BillingError> {
    match value {
        Some(sent) if sent.chars().count() > max_chars => Err(BillingError::invalid(format!(
            "{field} must be at most {max_chars} characters"
        ))),
        Some(_) | None => Ok(optional_text(value)),
    }
}
