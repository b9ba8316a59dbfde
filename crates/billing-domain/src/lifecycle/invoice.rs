//! Invoice transitions and payability.

use chrono::{DateTime, Utc};

use super::invoice_transition;
use crate::entities::user_invoice;
use crate::enums::InvoiceStatus;
use crate::error::DomainError;

/// The longest payment method or reference accepted, in characters.
pub const MAX_PAYMENT_FIELD_CHARS: usize = 255;

fn payment_field(field: &'static str, value: &str) -> Result<String, DomainError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(DomainError::InvalidField {
            field,
            reason: "must not be blank",
        });
    }
    if value.chars().count() > MAX_PAYMENT_FIELD_CHARS {
        return Err(DomainError::InvalidField {
            field,
            reason: "must be at most 255 characters",
        });
    }
    Ok(value.to_owned())
}

impl user_invoice::Model {
    /// Whether the invoice is unpaid (pending or failed) and `now` is at or
    /// after its `expires_at`, so it can no longer be paid.
    #[must_use]
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.status.is_unpaid() && self.expires_at.is_some_and(|at| now >= at)
    }

    /// Marks a `pending` or `failed` invoice paid at `now` by `method` (`card`,
    /// `sepa` …) with the provider's `reference`, both trimmed, non-blank and
    /// at most 255 characters.
    ///
    /// An unpaid invoice is payable while `now < expires_at`; at or after it
    /// the payment is refused with [`DomainError::InvoiceExpired`]. This holds
    /// for failed invoices as well as pending ones: a failed payment attempt
    /// does not extend the time an invoice may be paid in.
    ///
    /// ```
    /// use billing_domain::enums::InvoiceStatus;
    /// use chrono::{TimeZone, Utc};
    /// # use billing_domain::entities::user_invoice;
    /// # let mut invoice: user_invoice::Model = serde_json::from_value(serde_json::json!({
    /// #     "id": 1, "user_id": 1, "tarif_plan_id": 1, "subscription_id": null,
    /// #     "invoice_number": "INV-2026-000001", "amount": "11.90", "net_amount": "10.00",
    /// #     "tax_amount": "1.90", "currency": "EUR", "status": "pending",
    /// #     "payment_method": null, "payment_reference": null,
    /// #     "invoiced_at": "2026-05-01T00:00:00Z", "paid_at": null,
    /// #     "expires_at": "2026-05-15T00:00:00Z",
    /// #     "created_at": "2026-05-01T00:00:00Z", "updated_at": "2026-05-01T00:00:00Z",
    /// #     "version": 1})).unwrap();
    /// let now = Utc.with_ymd_and_hms(2026, 5, 2, 8, 0, 0).unwrap();
    /// invoice.mark_paid(now, "card", Some("ch_123")).unwrap();
    /// assert_eq!(invoice.status, InvoiceStatus::Paid);
    /// assert!(invoice.mark_paid(now, "card", Some("ch_123")).is_err()); // paid only once
    /// ```
    pub fn mark_paid(
        &mut self,
        now: DateTime<Utc>,
        method: &str,
        reference: Option<&str>,
    ) -> Result<(), DomainError> {
        invoice_transition(self.status, InvoiceStatus::Paid, "pay")?;
        if let Some(expires_at) = self.expires_at
            && self.is_expired(now)
        {
            return Err(DomainError::InvoiceExpired { expires_at });
        }
        let method = payment_field("payment_method", method)?;
        let reference = reference
            .map(|r| payment_field("payment_reference", r))
            .transpose()?;

        self.status = InvoiceStatus::Paid;
        self.payment_method = Some(method);
        self.payment_reference = reference;
        self.paid_at = Some(now);
        Ok(())
    }

    /// Records a failed payment attempt on a `pending` invoice. A failed
    /// invoice may still be paid (before its expiry) or cancelled.
    pub fn mark_failed(&mut self) -> Result<(), DomainError> {
        invoice_transition(self.status, InvoiceStatus::Failed, "fail")?;
        self.status = InvoiceStatus::Failed;
        Ok(())
    }

    /// Withdraws a `pending` or `failed` invoice (final).
    pub fn mark_cancelled(&mut self) -> Result<(), DomainError> {
        invoice_transition(self.status, InvoiceStatus::Cancelled, "cancel")?;
        self.status = InvoiceStatus::Cancelled;
        Ok(())
    }

    /// Records that a `paid` invoice was paid back (final). The payment
    /// fields are kept for the record.
    pub fn mark_refunded(&mut self) -> Result<(), DomainError> {
        invoice_transition(self.status, InvoiceStatus::Refunded, "refund")?;
        self.status = InvoiceStatus::Refunded;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};
    use rust_decimal::Decimal;

    use super::*;
    use crate::Numeric;
    use crate::Resource;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    fn invoice(status: InvoiceStatus) -> user_invoice::Model {
        user_invoice::Model {
            id: 1,
            user_id: 1,
            tarif_plan_id: 1,
            subscription_id: Some(4),
            invoice_number: "INV-2026-000001".to_owned(),
            amount: Numeric(Decimal::new(1190, 2)),
            net_amount: Numeric(Decimal::new(1000, 2)),
            tax_amount: Numeric(Decimal::new(190, 2)),
            currency: "EUR".to_owned(),
            status,
            payment_method: None,
            payment_reference: None,
            invoiced_at: at(2026, 5, 1),
            paid_at: None,
            expires_at: Some(at(2026, 5, 15)),
            fencing_token: None,
            created_at: at(2026, 5, 1),
            updated_at: at(2026, 5, 1),
            version: 2,
        }
    }

    #[test]
    fn pay_a_pending_invoice() {
        let mut inv = invoice(InvoiceStatus::Pending);
        inv.mark_paid(at(2026, 5, 2), " card ", Some("ch_1"))
            .unwrap();
        assert_eq!(inv.status, InvoiceStatus::Paid);
        assert_eq!(inv.payment_method.as_deref(), Some("card"));
        assert_eq!(inv.payment_reference.as_deref(), Some("ch_1"));
        assert_eq!(inv.paid_at, Some(at(2026, 5, 2)));
        assert_eq!(inv.version, 2);
        assert_eq!(inv.updated_at, at(2026, 5, 1));
    }

    #[test]
    fn pay_without_reference_and_without_expiry() {
        let mut inv = invoice(InvoiceStatus::Pending);
        inv.expires_at = None;
        inv.mark_paid(at(2030, 1, 1), "cash", None).unwrap();
        assert_eq!(inv.payment_reference, None);
    }

    #[test]
    fn pay_after_a_failed_attempt() {
        let mut inv = invoice(InvoiceStatus::Pending);
        inv.mark_failed().unwrap();
        assert_eq!(inv.status, InvoiceStatus::Failed);
        inv.mark_paid(at(2026, 5, 3), "sepa", Some("ref")).unwrap();
        assert_eq!(inv.status, InvoiceStatus::Paid);
    }

    #[test]
    fn an_expired_unpaid_invoice_cannot_be_paid() {
        for status in [InvoiceStatus::Pending, InvoiceStatus::Failed] {
            let expires_at = at(2026, 5, 15);
            let mut inv = invoice(status);
            let before = inv.clone();
            assert!(!inv.is_expired(expires_at - TimeDelta::nanoseconds(1)));
            assert!(inv.is_expired(expires_at));
            assert_eq!(
                inv.mark_paid(expires_at, "card", Some("ch_1")),
                Err(DomainError::InvoiceExpired { expires_at })
            );
            assert_eq!(inv, before);
            // One instant earlier it is still payable.
            inv.mark_paid(expires_at - TimeDelta::nanoseconds(1), "card", None)
                .unwrap();
        }
    }

    #[test]
    fn a_paid_invoice_is_never_expired() {
        let mut inv = invoice(InvoiceStatus::Pending);
        inv.mark_paid(at(2026, 5, 2), "card", None).unwrap();
        assert!(!inv.is_expired(at(2027, 1, 1)));
    }

    #[test]
    fn blank_or_oversized_payment_details_are_refused() {
        let mut inv = invoice(InvoiceStatus::Pending);
        let before = inv.clone();
        assert_eq!(
            inv.mark_paid(at(2026, 5, 2), "  ", None),
            Err(DomainError::InvalidField {
                field: "payment_method",
                reason: "must not be blank"
            })
        );
        assert_eq!(
            inv.mark_paid(at(2026, 5, 2), "card", Some("")),
            Err(DomainError::InvalidField {
                field: "payment_reference",
                reason: "must not be blank"
            })
        );
        let long = "x".repeat(256);
        assert!(inv.mark_paid(at(2026, 5, 2), &long, None).is_err());
        assert_eq!(inv, before);
        inv.mark_paid(at(2026, 5, 2), &"é".repeat(255), None)
            .unwrap();
    }

    #[test]
    fn refund_and_cancel() {
        let mut inv = invoice(InvoiceStatus::Pending);
        inv.mark_paid(at(2026, 5, 2), "card", Some("ch_1")).unwrap();
        inv.mark_refunded().unwrap();
        assert_eq!(inv.status, InvoiceStatus::Refunded);
        assert_eq!(inv.paid_at, Some(at(2026, 5, 2)));
        assert_eq!(inv.payment_reference.as_deref(), Some("ch_1"));

        let mut inv = invoice(InvoiceStatus::Pending);
        inv.mark_cancelled().unwrap();
        assert_eq!(inv.status, InvoiceStatus::Cancelled);

        let mut inv = invoice(InvoiceStatus::Failed);
        inv.mark_cancelled().unwrap();
        assert_eq!(inv.status, InvoiceStatus::Cancelled);
    }

    #[test]
    fn forbidden_transitions_fail_and_leave_the_model_unchanged() {
        type Action = fn(&mut user_invoice::Model) -> Result<(), DomainError>;
        let pay: Action = |i| i.mark_paid(at(2026, 5, 2), "card", Some("r"));
        let fail: Action = user_invoice::Model::mark_failed;
        let cancel: Action = user_invoice::Model::mark_cancelled;
        let refund: Action = user_invoice::Model::mark_refunded;

        let cases: [(InvoiceStatus, Action, &str); 12] = [
            (InvoiceStatus::Pending, refund, "refund"),
            (InvoiceStatus::Failed, fail, "fail"),
            (InvoiceStatus::Failed, refund, "refund"),
            (InvoiceStatus::Paid, pay, "pay"),
            (InvoiceStatus::Paid, fail, "fail"),
            (InvoiceStatus::Paid, cancel, "cancel"),
            (InvoiceStatus::Cancelled, pay, "pay"),
            (InvoiceStatus::Cancelled, cancel, "cancel"),
            (InvoiceStatus::Cancelled, refund, "refund"),
            (InvoiceStatus::Refunded, pay, "pay"),
            (InvoiceStatus::Refunded, refund, "refund"),
            (InvoiceStatus::Refunded, fail, "fail"),
        ];
        for (status, action, name) in cases {
            let mut inv = invoice(status);
            let before = inv.clone();
            assert_eq!(
                action(&mut inv),
                Err(DomainError::InvalidTransition {
                    entity: Resource::Invoice,
                    from: status.as_str(),
                    action: name
                })
            );
            assert_eq!(inv, before, "{name} from {status:?} changed the model");
        }
    }

    #[test]
    fn an_expired_paid_invoice_reports_the_transition_not_the_expiry() {
        let mut inv = invoice(InvoiceStatus::Paid);
        assert!(matches!(
            inv.mark_paid(at(2027, 1, 1), "card", None),
            Err(DomainError::InvalidTransition { .. })
        ));
    }
}
