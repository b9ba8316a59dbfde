//! Invoices: creation with gapless numbers, and payment and refund under a
//! distributed lock, inside an idempotency key, in one transaction.

use std::time::{Duration, Instant};

use billing_concurrency::LockGuard;
use billing_domain::entities::{currency, subscription, tarif_plan, tax, tax_rate, user_invoice};
use billing_domain::enums::InvoiceStatus;
use billing_domain::plan_invoice_amounts;
use billing_domain::values::{CurrencyCode, TaxCode};
use billing_repository::{
    Currencies, Executor, Invoices, Page, PricingQuery, PricingRows, RepositoryError, Transaction,
    Users,
};
use serde::{Deserialize, Serialize};

use crate::events::{append_events, event_of};
use crate::idempotency::{Claim, IdempotencyKey, Idempotent};
use crate::subscriptions::ensure_can_buy;
use crate::versioned::{check_expected_version, save_or_conflict};
use crate::{Billing, BillingError, Contended, LockKey, PageRequest, Resource};

/// Writing under a lock stops this long before the lock's TTL runs out, so
/// a commit never lands after another holder may have taken the lock.
const LOCK_SAFETY_MARGIN: Duration = Duration::from_millis(500);

/// The longest `payment_method` stored (the column is `VARCHAR(50)`).
pub const MAX_PAYMENT_METHOD_CHARS: usize = 50;

/// An invoice to create.
#[derive(Clone, Debug)]
pub struct NewInvoice {
    /// The customer.
    pub user_id: i64,
    /// The plan invoiced.
    pub plan_id: i64,
    /// The subscription it pays for; it must be the user's, for this plan.
    pub subscription_id: Option<i64>,
    /// ISO 4217 code of the amounts; the plan's currency when absent.
    pub currency: Option<String>,
    /// Code of the tax to apply at the rate in force now; none when absent.
    pub tax_code: Option<String>,
}

/// A payment of an invoice.
#[derive(Clone, Debug)]
pub struct Payment {
    /// How it was paid (`card`, `sepa` …).
    pub payment_method: String,
    /// The payment provider's reference.
    pub payment_reference: Option<String>,
}

/// A transition of an invoice that needs no payment data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvoiceAction {
    /// A payment attempt failed.
    Fail,
    /// Withdraw the invoice.
    Cancel,
}

/// A paid (or refunded) invoice and the subscription the payment activated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentOutcome {
    /// The invoice after the change.
    pub invoice: user_invoice::Model,
    /// The subscription after the change, when the invoice has one and the
    /// change touched it.
    pub subscription: Option<subscription::Model>,
}

impl Billing {
    /// Creates a pending invoice: amounts by the domain's pricing rules (the
    /// plan's price in the invoice currency, the tax in force now) and the
    /// next gapless invoice number of the year, in one transaction.
    ///
    /// # Errors
    /// [`BillingError::NotFound`] for an unknown user or plan;
    /// [`BillingError::Validation`] for an unknown or inactive currency or
    /// tax, a subscription of someone else or another plan, a user who
    /// cannot buy.
    pub async fn create_invoice(
        &self,
        new: NewInvoice,
    ) -> Result<user_invoice::Model, BillingError> {
        let at = self.now();
        let expires_at = at.checked_add_signed(self.settings().invoice_payment_window);
        // Everything the amounts depend on is read from the database in one
        // statement, never from the catalogue cache: a price change
        // acknowledged before this request is what it charges. The
        // transaction then only numbers and inserts the invoice.
        let invoice = price_invoice(self.db(), &new, at, expires_at).await?;
        if Claim::current().is_none() && self.settings().invoice_batching {
            return self.insert_invoice_batched(invoice).await;
        }
        self.recording_transaction(move |tx| {
            let invoice = invoice.clone();
            Box::pin(async move {
                let invoice = Invoices::insert_numbered(tx, invoice).await?;
                append_events(tx, [event_of(None, &invoice)?]).await?;
                Ok(Some(invoice))
            })
        })
        .await
    }

    /// The invoice `id`.
    ///
    /// # Errors
    /// [`BillingError::NotFound`].
    pub async fn invoice(&self, id: i64) -> Result<user_invoice::Model, BillingError> {
        Ok(Invoices::get(self.db(), id).await?)
    }

    /// The invoices of user `user_id`, optionally of one status, by id.
    ///
    /// # Errors
    /// [`BillingError::NotFound`] for an unknown user.
    pub async fn list_invoices(
        &self,
        user_id: i64,
        status: Option<InvoiceStatus>,
        page: PageRequest,
    ) -> Result<Page<user_invoice::Model>, BillingError> {
        Users::get(self.db(), user_id).await?;
        Ok(Invoices::by_user(self.db(), user_id, status, page).await?)
    }

    /// Marks an invoice failed or cancelled.
    ///
    /// # Errors
    /// [`BillingError::NotFound`], [`BillingError::VersionMismatch`],
    /// [`BillingError::InvalidTransition`].
    pub async fn transition_invoice(
        &self,
        id: i64,
        action: InvoiceAction,
        expected_version: Option<i32>,
    ) -> Result<user_invoice::Model, BillingError> {
        self.update_versioned::<user_invoice::Entity, _>(id, expected_version, |invoice| {
            match action {
                InvoiceAction::Fail => invoice.mark_failed(),
                InvoiceAction::Cancel => invoice.mark_cancelled(),
            }
            .map_err(BillingError::from)
        })
        .await
    }

    /// Pays an invoice, at most once per idempotency key and at most once in
    /// all: under the invoice's distributed lock and in one transaction, the
    /// invoice is marked paid and its subscription activated (pending),
    /// renewed (active) or resumed and renewed (paused).
    ///
    /// The payment commits together with the key's record: a repeat of the
    /// key, even after a crash at any moment, replays the first outcome
    /// ([`Idempotent::Replayed`]); another key for a paid invoice is refused
    /// with [`BillingError::InvalidTransition`].
    ///
    /// # Errors
    /// The idempotency refusals ([`BillingError::IdempotencyInFlight`],
    /// [`BillingError::IdempotencyKeyReused`]); [`BillingError::NotFound`],
    /// [`BillingError::Locked`] (another request holds the invoice),
    /// [`BillingError::VersionMismatch`],
    /// [`BillingError::InvalidTransition`] (not payable, expired);
    /// [`BillingError::Unavailable`]. Nothing is charged on any error.
    pub async fn pay_invoice(
        &self,
        id: i64,
        payment: Payment,
        expected_version: Option<i32>,
        key: &IdempotencyKey,
    ) -> Result<Idempotent<PaymentOutcome>, BillingError> {
        check_payment(&payment)?;
        self.idempotently(key, async move {
            self.under_invoice_lock(id, |lock| {
                self.pay_once(id, payment.clone(), expected_version, lock)
            })
            .await
        })
        .await
    }

    /// Refunds a paid invoice, like [`pay_invoice`](Self::pay_invoice):
    /// under the invoice's lock, inside the idempotency key, in one
    /// transaction. The subscription is left as it is.
    ///
    /// # Errors
    /// As [`pay_invoice`](Self::pay_invoice); refunding an unpaid invoice
    /// is [`BillingError::InvalidTransition`].
    pub async fn refund_invoice(
        &self,
        id: i64,
        expected_version: Option<i32>,
        key: &IdempotencyKey,
    ) -> Result<Idempotent<PaymentOutcome>, BillingError> {
        self.idempotently(key, async move {
            self.under_invoice_lock(id, |lock| self.refund_once(id, expected_version, lock))
                .await
        })
        .await
    }

    /// Runs `work` holding the lock of invoice `id`, then releases it.
    async fn under_invoice_lock<T, F, Fut>(&self, id: i64, work: F) -> Result<T, BillingError>
    where
        F: FnOnce(LockFence) -> Fut,
        Fut: Future<Output = Result<T, BillingError>>,
    {
        let settings = self.settings();
        let key = LockKey::of(Resource::Invoice, id);
        let lock = self
            .coordination()
            .try_lock(
                &key.name(),
                settings.payment_lock_ttl,
                settings.payment_lock_wait,
            )
            .await
            .map_err(|error| BillingError::taking_lock(error, key))?;
        let fence = LockFence::of(&lock)?;
        let result = work(fence).await;
        release(lock).await;
        result
    }

    async fn refund_once(
        &self,
        id: i64,
        expected_version: Option<i32>,
        fence: LockFence,
    ) -> Result<PaymentOutcome, BillingError> {
        self.recording_transaction(move |tx| {
            Box::pin(async move {
                let mut invoice = load_for_change(tx, id, expected_version, fence).await?;
                let before = invoice.clone();
                let read_version = invoice.version;
                invoice.mark_refunded()?;
                invoice.fencing_token = Some(fence.token);
                fence.ensure_held()?;
                let Some(invoice) = save_or_conflict::<user_invoice::Entity, _>(
                    tx,
                    &invoice,
                    read_version,
                    expected_version,
                )
                .await?
                else {
                    return Ok(None);
                };
                append_events(tx, [event_of(Some(&before), &invoice)?]).await?;
                fence.ensure_held()?;
                Ok(Some(PaymentOutcome {
                    invoice,
                    subscription: None,
                }))
            })
        })
        .await
    }
}

/// The pending invoice `new` asks for, priced at `at` from the rows as
/// `exec` reads them in one statement: the user, plan, subscription,
/// currencies and tax rate history.
async fn price_invoice<X: Executor>(
    exec: &X,
    new: &NewInvoice,
    at: chrono::DateTime<chrono::Utc>,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<user_invoice::Model, BillingError> {
    let code = new
        .currency
        .as_deref()
        .map(CurrencyCode::parse)
        .transpose()?;
    let tax_code = new.tax_code.as_deref().map(TaxCode::parse).transpose()?;
    let rows = PricingRows::read(
        exec,
        PricingQuery {
            user_id: new.user_id,
            plan_id: new.plan_id,
            subscription_id: new.subscription_id,
            currency: code.as_ref().map(CurrencyCode::as_str),
            tax_code: tax_code.as_ref().map(TaxCode::as_str),
        },
    )
    .await?;
    let user = rows.user.ok_or(RepositoryError::NotFound {
        entity: Resource::User,
        id: new.user_id,
    })?;
    ensure_can_buy(&user)?;
    let plan = rows.plan.ok_or(RepositoryError::NotFound {
        entity: Resource::Plan,
        id: new.plan_id,
    })?;
    if let Some(subscription_id) = new.subscription_id {
        let subscription = rows
            .subscription
            .ok_or_else(|| BillingError::not_found(Resource::Subscription, subscription_id))?;
        if subscription.user_id != user.id || subscription.tarif_plan_id != plan.id {
            return Err(BillingError::invalid_transition(format!(
                "subscription {subscription_id} is not user {}'s subscription to plan {}",
                user.id, plan.id
            )));
        }
    }
    let unknown = |code: &str| BillingError::not_found(Resource::Currency, code);
    let target = rows
        .target
        .ok_or_else(|| unknown(code.as_ref().map_or(&plan.currency, CurrencyCode::as_str)))?;
    let plan_currency = rows.plan_currency.ok_or_else(|| unknown(&plan.currency))?;
    let default = rows
        .default
        .ok_or_else(|| BillingError::invalid_transition("no default currency is configured"))?;
    let tax = match (tax_code.as_ref(), rows.tax) {
        (Some(_), Some(tax)) => Some((tax, rows.rates)),
        (Some(code), None) => return Err(BillingError::not_found(Resource::Tax, code)),
        (None, _) => None,
    };
    pending_invoice(
        user.id,
        new.subscription_id,
        &InvoicePricing {
            plan: &plan,
            target,
            plan_currency: &plan_currency,
            default: &default,
            tax: tax.as_ref(),
        },
        at,
        expires_at,
    )
    // Every input was checked on its own; what is left depends on the
    // stored rows (an inactive currency or tax, no rate in force, an amount
    // the exchange rate takes out of range).
    .map_err(BillingError::against_state)
}

/// The rows an invoice is priced from.
pub(crate) struct InvoicePricing<'a> {
    /// The plan invoiced.
    pub(crate) plan: &'a tarif_plan::Model,
    /// The currency of the invoice.
    pub(crate) target: currency::Model,
    /// The plan's own currency.
    pub(crate) plan_currency: &'a currency::Model,
    /// The default currency (the base of the exchange rates).
    pub(crate) default: &'a currency::Model,
    /// The tax to apply and its rate history, if any.
    pub(crate) tax: Option<&'a (tax::Model, Vec<tax_rate::Model>)>,
}

/// The pending invoice of `user_id` for `pricing`'s plan, priced by the
/// domain's rules at `at`, numbered later (in its transaction).
pub(crate) fn pending_invoice(
    user_id: i64,
    subscription_id: Option<i64>,
    pricing: &InvoicePricing<'_>,
    at: chrono::DateTime<chrono::Utc>,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<user_invoice::Model, BillingError> {
    let amounts = plan_invoice_amounts(
        pricing.plan,
        &pricing.target,
        pricing.default,
        pricing.plan_currency,
        pricing.tax.map(|(tax, history)| (tax, history.as_slice())),
        at,
    )?;
    Ok(user_invoice::Model {
        id: 0,
        user_id,
        tarif_plan_id: pricing.plan.id,
        subscription_id,
        invoice_number: String::new(),
        amount: amounts.gross.into(),
        net_amount: amounts.net.into(),
        tax_amount: amounts.tax.into(),
        currency: pricing.target.code.clone(),
        status: InvoiceStatus::Pending,
        payment_method: None,
        payment_reference: None,
        invoiced_at: at,
        paid_at: None,
        expires_at,
        fencing_token: None,
        created_at: at,
        updated_at: at,
        version: 1,
    })
}

impl Billing {
    /// The currency `code`, read from the database now.
    pub(crate) async fn existing_currency(
        &self,
        code: &str,
    ) -> Result<billing_domain::entities::currency::Model, BillingError> {
        existing_currency(self.db(), code).await
    }
}

/// The currency `code` as `exec` reads it; unknown is `NotFound`.
async fn existing_currency<X: Executor>(
    exec: &X,
    code: &str,
) -> Result<billing_domain::entities::currency::Model, BillingError> {
    Currencies::find_by_code(exec, code)
        .await?
        .ok_or_else(|| BillingError::not_found(Resource::Currency, code))
}

/// Refuses a payment whose method the schema cannot store, before any lock
/// is taken (the domain checks blank values and the reference).
fn check_payment(payment: &Payment) -> Result<(), BillingError> {
    // Checked before the invoice's state, so malformed input is refused as
    // such whatever the invoice's state; counted as sent, as the schema's
    // `maxLength` counts.
    let blank = |text: &str| text.trim().is_empty();
    if blank(&payment.payment_method) || payment.payment_reference.as_deref().is_some_and(blank) {
        return Err(BillingError::invalid(
            "payment_method and payment_reference must not be blank",
        ));
    }
    if payment.payment_method.chars().count() > MAX_PAYMENT_METHOD_CHARS {
        return Err(BillingError::invalid(format!(
            "payment_method must be at most {MAX_PAYMENT_METHOD_CHARS} characters"
        )));
    }
    let reference = payment.payment_reference.as_deref().unwrap_or_default();
    if reference.chars().count() > crate::rules::PAYMENT_REFERENCE_MAX_CHARS {
        return Err(BillingError::invalid(format!(
            "payment_reference must be at most {} characters",
            crate::rules::PAYMENT_REFERENCE_MAX_CHARS
        )));
    }
    Ok(())
}

/// What a write under an invoice lock must respect: the lock's fencing
/// token, stored with the write, and the instant the lock runs out.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LockFence {
    pub(crate) token: i64,
    valid_until: Instant,
}

impl LockFence {
    fn of(lock: &LockGuard) -> Result<Self, BillingError> {
        let token = i64::try_from(lock.fencing_token()).map_err(|_| BillingError::Internal {
            source: "fencing token out of range".into(),
        })?;
        let valid_until = Instant::now() + lock.remaining().saturating_sub(LOCK_SAFETY_MARGIN);
        Ok(Self { token, valid_until })
    }

    /// Refuses to write once the lock may have passed to another holder.
    pub(crate) fn ensure_held(self) -> Result<(), BillingError> {
        if Instant::now() < self.valid_until {
            Ok(())
        } else {
            Err(BillingError::Locked {
                contended: Contended::LockExpired(Resource::Invoice),
            })
        }
    }
}

/// Reads the invoice in `tx` and checks the caller's expected version and
/// the fencing token: a row written under a newer lock than ours means we
/// outlived our lock, and must not write.
async fn load_for_change(
    tx: &Transaction,
    id: i64,
    expected_version: Option<i32>,
    fence: LockFence,
) -> Result<user_invoice::Model, BillingError> {
    let invoice = Invoices::get(tx, id).await?;
    check_expected_version(Resource::Invoice, expected_version, invoice.version)?;
    if invoice
        .fencing_token
        .is_some_and(|stored| stored >= fence.token)
    {
        return Err(BillingError::Locked {
            contended: Contended::NewerLockHolder(LockKey::of(Resource::Invoice, id)),
        });
    }
    Ok(invoice)
}

async fn release(lock: LockGuard) {
    let name = lock.name().to_owned();
    match lock.release().await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(lock = name, "the lock had expired before it was released"),
        Err(error) => tracing::warn!(
            lock = name,
            error = &error as &dyn std::error::Error,
            "could not release the lock; it expires at its TTL"
        ),
    }
}
