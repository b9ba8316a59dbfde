//! The schema as specified, table by table, in the normalised form the
//! catalogue readers produce.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalogue::{Catalogue, Column, ForeignKey, Index, Kind, OnDelete, Table};

/// One column: name, kind, nullable.
type ColumnSpec = (&'static str, Kind, bool);

const NOT_NULL: bool = false;
const NULL: bool = true;

struct TableSpec {
    name: &'static str,
    columns: &'static [ColumnSpec],
    /// Whether `id`, `created_at`, `updated_at` and `version` are added.
    bookkeeping: bool,
    unique: &'static [(&'static str, bool)],
    plain: &'static [&'static str],
    foreign_keys: &'static [(&'static str, &'static str, &'static str, OnDelete)],
}

const MONEY: Kind = Kind::Decimal(19, 4);

const TABLES: &[TableSpec] = &[
    TableSpec {
        name: "user",
        columns: &[
            ("email", Kind::Text, NOT_NULL),
            ("password_hash", Kind::Text, NOT_NULL),
            ("status", Kind::Text, NOT_NULL),
            ("role", Kind::Text, NOT_NULL),
        ],
        bookkeeping: true,
        unique: &[("email", false)],
        plain: &["status"],
        foreign_keys: &[],
    },
    TableSpec {
        name: "user_details",
        columns: &[
            ("user_id", Kind::BigInt, NOT_NULL),
            ("first_name", Kind::Text, NULL),
            ("last_name", Kind::Text, NULL),
            ("phone", Kind::Text, NULL),
            ("company", Kind::Text, NULL),
            ("tax_id", Kind::Text, NULL),
            ("address_line1", Kind::Text, NULL),
            ("address_line2", Kind::Text, NULL),
            ("city", Kind::Text, NULL),
            ("postal_code", Kind::Text, NULL),
            ("country_code", Kind::Text, NULL),
        ],
        bookkeeping: true,
        unique: &[("user_id", false)],
        plain: &[],
        foreign_keys: &[("user_id", "user", "id", OnDelete::Cascade)],
    },
    TableSpec {
        name: "user_case",
        columns: &[
            ("user_id", Kind::BigInt, NOT_NULL),
            ("subject", Kind::Text, NOT_NULL),
            ("description", Kind::Text, NOT_NULL),
            ("status", Kind::Text, NOT_NULL),
        ],
        bookkeeping: true,
        unique: &[],
        plain: &["user_id", "status"],
        foreign_keys: &[("user_id", "user", "id", OnDelete::Cascade)],
    },
    TableSpec {
        name: "currency",
        columns: &[
            ("code", Kind::Text, NOT_NULL),
            ("name", Kind::Text, NOT_NULL),
            ("symbol", Kind::Text, NULL),
            ("exchange_rate", Kind::Decimal(19, 8), NOT_NULL),
            ("decimal_places", Kind::SmallInt, NOT_NULL),
            ("is_default", Kind::Boolean, NOT_NULL),
            ("is_active", Kind::Boolean, NOT_NULL),
        ],
        bookkeeping: true,
        unique: &[("code", false), ("is_default", true)],
        plain: &[],
        foreign_keys: &[],
    },
    TableSpec {
        name: "tax",
        columns: &[
            ("name", Kind::Text, NOT_NULL),
            ("code", Kind::Text, NOT_NULL),
            ("description", Kind::Text, NULL),
            ("rate", Kind::Decimal(9, 4), NOT_NULL),
            ("country_code", Kind::Text, NOT_NULL),
            ("region_code", Kind::Text, NULL),
            ("is_active", Kind::Boolean, NOT_NULL),
            ("is_inclusive", Kind::Boolean, NOT_NULL),
        ],
        bookkeeping: true,
        unique: &[("code", false)],
        plain: &["country_code"],
        foreign_keys: &[],
    },
    TableSpec {
        name: "tax_rate",
        columns: &[
            ("tax_id", Kind::BigInt, NOT_NULL),
            ("rate", Kind::Decimal(9, 4), NOT_NULL),
            ("valid_from", Kind::Timestamp, NOT_NULL),
            ("valid_to", Kind::Timestamp, NULL),
        ],
        bookkeeping: true,
        unique: &[("tax_id", true)],
        plain: &["tax_id"],
        foreign_keys: &[("tax_id", "tax", "id", OnDelete::Cascade)],
    },
    TableSpec {
        name: "tarif_plan",
        columns: &[
            ("name", Kind::Text, NOT_NULL),
            ("slug", Kind::Text, NOT_NULL),
            ("description", Kind::Text, NULL),
            ("price", MONEY, NOT_NULL),
            ("currency", Kind::Text, NOT_NULL),
            ("billing_period", Kind::Text, NOT_NULL),
            ("features", Kind::Json, NOT_NULL),
            ("is_active", Kind::Boolean, NOT_NULL),
            ("sort_order", Kind::Integer, NOT_NULL),
            ("prices", Kind::Json, NOT_NULL),
        ],
        bookkeeping: true,
        unique: &[("slug", false)],
        plain: &["is_active"],
        foreign_keys: &[("currency", "currency", "code", OnDelete::Restrict)],
    },
    TableSpec {
        name: "subscription",
        columns: &[
            ("user_id", Kind::BigInt, NOT_NULL),
            ("tarif_plan_id", Kind::BigInt, NOT_NULL),
            ("status", Kind::Text, NOT_NULL),
            ("started_at", Kind::Timestamp, NULL),
            ("expires_at", Kind::Timestamp, NULL),
            ("cancelled_at", Kind::Timestamp, NULL),
            ("paused_at", Kind::Timestamp, NULL),
        ],
        bookkeeping: true,
        unique: &[],
        plain: &["user_id", "status", "expires_at", "tarif_plan_id"],
        foreign_keys: &[
            ("user_id", "user", "id", OnDelete::Cascade),
            ("tarif_plan_id", "tarif_plan", "id", OnDelete::Restrict),
        ],
    },
    TableSpec {
        name: "user_invoice",
        columns: &[
            ("user_id", Kind::BigInt, NOT_NULL),
            ("tarif_plan_id", Kind::BigInt, NOT_NULL),
            ("subscription_id", Kind::BigInt, NULL),
            ("invoice_number", Kind::Text, NOT_NULL),
            ("amount", MONEY, NOT_NULL),
            ("net_amount", MONEY, NOT_NULL),
            ("tax_amount", MONEY, NOT_NULL),
            ("currency", Kind::Text, NOT_NULL),
            ("status", Kind::Text, NOT_NULL),
            ("payment_method", Kind::Text, NULL),
            ("payment_reference", Kind::Text, NULL),
            ("invoiced_at", Kind::Timestamp, NOT_NULL),
            ("paid_at", Kind::Timestamp, NULL),
            ("expires_at", Kind::Timestamp, NULL),
            ("fencing_token", Kind::BigInt, NULL),
        ],
        bookkeeping: true,
        unique: &[("invoice_number", false)],
        plain: &["user_id", "status", "subscription_id", "tarif_plan_id"],
        foreign_keys: &[
            ("user_id", "user", "id", OnDelete::Cascade),
            ("tarif_plan_id", "tarif_plan", "id", OnDelete::Restrict),
            ("subscription_id", "subscription", "id", OnDelete::SetNull),
            ("currency", "currency", "code", OnDelete::Restrict),
        ],
    },
    TableSpec {
        name: "invoice_sequence",
        columns: &[
            ("year", Kind::Integer, NOT_NULL),
            ("last_number", Kind::BigInt, NOT_NULL),
            ("updated_at", Kind::Timestamp, NOT_NULL),
        ],
        bookkeeping: false,
        unique: &[],
        plain: &[],
        foreign_keys: &[],
    },
    TableSpec {
        name: "idempotency_record",
        columns: &[
            ("scope", Kind::Text, NOT_NULL),
            ("key", Kind::Text, NOT_NULL),
            ("fingerprint", Kind::Text, NOT_NULL),
            ("outcome_kind", Kind::Text, NOT_NULL),
            ("outcome", Kind::Text, NOT_NULL),
            ("user_id", Kind::BigInt, NULL),
            ("created_at", Kind::Timestamp, NOT_NULL),
        ],
        bookkeeping: false,
        unique: &[],
        plain: &["user_id", "created_at"],
        foreign_keys: &[],
    },
];

/// The nine tables of the original schema (the counter table aside).
pub const ORIGINAL_TABLES: [&str; 9] = [
    "user",
    "user_details",
    "user_case",
    "currency",
    "tax",
    "tax_rate",
    "tarif_plan",
    "subscription",
    "user_invoice",
];

/// The specified schema as a catalogue.
pub fn expected() -> Catalogue {
    let tables = TABLES
        .iter()
        .map(|spec| {
            let mut columns: BTreeMap<String, Column> = spec
                .columns
                .iter()
                .map(|&(name, kind, nullable)| (name.to_owned(), Column { kind, nullable }))
                .collect();
            if spec.bookkeeping {
                for (name, kind) in [
                    ("id", Kind::BigInt),
                    ("created_at", Kind::Timestamp),
                    ("updated_at", Kind::Timestamp),
                    ("version", Kind::Integer),
                ] {
                    columns.insert(
                        name.to_owned(),
                        Column {
                            kind,
                            nullable: false,
                        },
                    );
                }
            }
            let unique = spec
                .unique
                .iter()
                .map(|&(column, partial)| Index {
                    columns: vec![column.to_owned()],
                    partial,
                })
                .collect::<BTreeSet<_>>();
            let plain = spec
                .plain
                .iter()
                .map(|&column| Index {
                    columns: vec![column.to_owned()],
                    partial: false,
                })
                .collect::<BTreeSet<_>>();
            let foreign_keys = spec
                .foreign_keys
                .iter()
                .map(|&(column, table, target, on_delete)| ForeignKey {
                    column: column.to_owned(),
                    table: table.to_owned(),
                    target: target.to_owned(),
                    on_delete,
                })
                .collect();
            (
                spec.name.to_owned(),
                Table {
                    columns,
                    unique,
                    plain,
                    foreign_keys,
                },
            )
        })
        .collect();
    let mut catalogue = Catalogue { tables };
    add_billing_cycle(&mut catalogue);
    add_outbox(&mut catalogue);
    catalogue
}

fn index(columns: &[&str]) -> Index {
    Index {
        columns: columns.iter().map(|&c| c.to_owned()).collect(),
        partial: false,
    }
}

fn column(kind: Kind, nullable: bool) -> Column {
    Column { kind, nullable }
}

fn foreign_key(column: &str, table: &str, on_delete: OnDelete) -> ForeignKey {
    ForeignKey {
        column: column.to_owned(),
        table: table.to_owned(),
        target: "id".to_owned(),
        on_delete,
    }
}

/// The billing cycle's records (written once, so without `version`) and
/// the composite index its due-subscription query walks.
fn add_billing_cycle(catalogue: &mut Catalogue) {
    let renewal = Table {
        columns: [
            ("id", column(Kind::BigInt, NOT_NULL)),
            ("subscription_id", column(Kind::BigInt, NOT_NULL)),
            ("period_start", column(Kind::Timestamp, NOT_NULL)),
            ("invoice_id", column(Kind::BigInt, NOT_NULL)),
            ("created_at", column(Kind::Timestamp, NOT_NULL)),
        ]
        .into_iter()
        .map(|(name, c)| (name.to_owned(), c))
        .collect(),
        unique: [
            index(&["subscription_id", "period_start"]),
            index(&["invoice_id"]),
        ]
        .into(),
        plain: BTreeSet::new(),
        foreign_keys: [
            foreign_key("subscription_id", "subscription", OnDelete::Cascade),
            foreign_key("invoice_id", "user_invoice", OnDelete::Cascade),
        ]
        .into(),
    };
    let attempt = Table {
        columns: [
            ("id", column(Kind::BigInt, NOT_NULL)),
            ("invoice_id", column(Kind::BigInt, NOT_NULL)),
            ("attempt", column(Kind::Integer, NOT_NULL)),
            ("outcome", column(Kind::Text, NOT_NULL)),
            ("detail", column(Kind::Text, NULL)),
            ("attempted_at", column(Kind::Timestamp, NOT_NULL)),
        ]
        .into_iter()
        .map(|(name, c)| (name.to_owned(), c))
        .collect(),
        unique: [index(&["invoice_id", "attempt"])].into(),
        plain: BTreeSet::new(),
        foreign_keys: [foreign_key("invoice_id", "user_invoice", OnDelete::Cascade)].into(),
    };
    catalogue
        .tables
        .insert("subscription_renewal".to_owned(), renewal);
    catalogue
        .tables
        .insert("dunning_attempt".to_owned(), attempt);
    if let Some(subscription) = catalogue.tables.get_mut("subscription") {
        subscription
            .plain
            .insert(index(&["status", "expires_at", "id"]));
    }
}

fn table(columns: &[(&str, Kind, bool)]) -> BTreeMap<String, Column> {
    columns
        .iter()
        .map(|&(name, kind, nullable)| (name.to_owned(), column(kind, nullable)))
        .collect()
}

/// The outbox (`event`, positions given after commit) and the webhook
/// tables.
fn add_outbox(catalogue: &mut Catalogue) {
    let event = Table {
        columns: table(&[
            ("id", Kind::BigInt, NOT_NULL),
            ("position", Kind::BigInt, NULL),
            ("event_type", Kind::Text, NOT_NULL),
            ("resource_kind", Kind::Text, NOT_NULL),
            ("resource_id", Kind::BigInt, NOT_NULL),
            ("resource_version", Kind::Integer, NOT_NULL),
            ("data", Kind::Text, NOT_NULL),
            ("occurred_at", Kind::Timestamp, NOT_NULL),
        ]),
        unique: [index(&["position"])].into(),
        plain: [index(&["resource_kind", "resource_id", "id"])].into(),
        foreign_keys: BTreeSet::new(),
    };
    let endpoint = Table {
        columns: table(&[
            ("id", Kind::BigInt, NOT_NULL),
            ("url", Kind::Text, NOT_NULL),
            ("event_types", Kind::Text, NOT_NULL),
            ("secret", Kind::Text, NOT_NULL),
            ("status", Kind::Text, NOT_NULL),
            ("created_at", Kind::Timestamp, NOT_NULL),
            ("updated_at", Kind::Timestamp, NOT_NULL),
        ]),
        unique: BTreeSet::new(),
        plain: BTreeSet::new(),
        foreign_keys: BTreeSet::new(),
    };
    let delivery = Table {
        columns: table(&[
            ("id", Kind::BigInt, NOT_NULL),
            ("endpoint_id", Kind::BigInt, NOT_NULL),
            ("event_id", Kind::BigInt, NOT_NULL),
            ("event_position", Kind::BigInt, NOT_NULL),
            ("event_type", Kind::Text, NOT_NULL),
            ("resource_kind", Kind::Text, NOT_NULL),
            ("resource_id", Kind::BigInt, NOT_NULL),
            ("status", Kind::Text, NOT_NULL),
            ("attempts", Kind::Integer, NOT_NULL),
            ("next_attempt_at", Kind::Timestamp, NULL),
            ("last_status_code", Kind::Integer, NULL),
            ("created_at", Kind::Timestamp, NOT_NULL),
            ("updated_at", Kind::Timestamp, NOT_NULL),
        ]),
        unique: [index(&["endpoint_id", "event_id"])].into(),
        plain: [
            index(&["status", "next_attempt_at"]),
            index(&[
                "endpoint_id",
                "resource_kind",
                "resource_id",
                "event_position",
            ]),
        ]
        .into(),
        foreign_keys: [
            foreign_key("endpoint_id", "webhook_endpoint", OnDelete::Cascade),
            foreign_key("event_id", "event", OnDelete::Cascade),
        ]
        .into(),
    };
    let attempt = Table {
        columns: table(&[
            ("id", Kind::BigInt, NOT_NULL),
            ("delivery_id", Kind::BigInt, NOT_NULL),
            ("attempted_at", Kind::Timestamp, NOT_NULL),
            ("status_code", Kind::Integer, NULL),
            ("error", Kind::Text, NULL),
            ("duration_ms", Kind::BigInt, NOT_NULL),
        ]),
        unique: BTreeSet::new(),
        plain: [index(&["delivery_id"])].into(),
        foreign_keys: [foreign_key(
            "delivery_id",
            "webhook_delivery",
            OnDelete::Cascade,
        )]
        .into(),
    };
    for (name, table) in [
        ("event", event),
        ("webhook_endpoint", endpoint),
        ("webhook_delivery", delivery),
        ("webhook_attempt", attempt),
    ] {
        catalogue.tables.insert(name.to_owned(), table);
    }
}
