"""The segmentation engine: per-customer facts and grades, calibrations, history, churn alerts.

The walking skeleton's ``customer_segments`` kept running totals, from which the per-order facts that the
engine needs (placed dates, returns per order, …) cannot be recovered. This revision therefore recreates
the projection empty and forgets the consumer's offsets and inbox: on its next start the consumer replays
every topic from the earliest offset (topics keep events forever, DESIGN §2) and rebuilds it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from shared.db.core_schema import run_script

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script(
        """
        DROP TABLE customer_segments;
        DELETE FROM consumer_offsets;
        DELETE FROM inbox;
        CREATE TABLE customer_segments (
            customer_id          TEXT PRIMARY KEY,
            registered           BOOLEAN NOT NULL,
            company_name         TEXT,
            region               TEXT,
            stage                TEXT,
            deactivated          BOOLEAN NOT NULL DEFAULT false,
            orders_count         INTEGER NOT NULL,
            cancelled_orders     INTEGER NOT NULL,
            gross_revenue        NUMERIC(18, 4) NOT NULL,
            cancelled_amount     NUMERIC(18, 4) NOT NULL,
            returned_amount      NUMERIC(18, 4) NOT NULL,
            net_revenue          NUMERIC(18, 4) NOT NULL,
            currency             TEXT,
            first_order_at       TIMESTAMPTZ,
            last_order_at        TIMESTAMPTZ,
            complaints_total     INTEGER NOT NULL,
            open_complaints      INTEGER NOT NULL,
            events_applied       INTEGER NOT NULL,
            last_event_at        TIMESTAMPTZ,
            segmentation_version INTEGER NOT NULL,
            first_seen_at        TIMESTAMPTZ NOT NULL,
            value_tier           TEXT NOT NULL,
            candidate_tier       TEXT,
            tier_below           INTEGER NOT NULL DEFAULT 0,
            anchor_tier          TEXT,
            anchor_below         INTEGER NOT NULL DEFAULT 0,
            calibration_id       BIGINT,
            net_contribution     NUMERIC(18, 4) NOT NULL DEFAULT 0,
            live_orders          INTEGER NOT NULL DEFAULT 0,
            window_orders        INTEGER NOT NULL DEFAULT 0,
            recency_days         INTEGER,
            r_score              INTEGER,
            f_score              INTEGER,
            m_score              INTEGER,
            rfm_segment          TEXT,
            lifecycle_stage      TEXT,
            median_gap_days      NUMERIC(10, 1),
            average_order_value  NUMERIC(18, 4),
            spend_last_90        NUMERIC(18, 4) NOT NULL DEFAULT 0,
            spend_previous_90    NUMERIC(18, 4) NOT NULL DEFAULT 0,
            activity_status      TEXT,
            activity_reason      TEXT,
            churn_score          INTEGER NOT NULL DEFAULT 0,
            churn_band           TEXT NOT NULL DEFAULT 'low',
            churn_reasons        JSONB NOT NULL DEFAULT '[]',
            complaints_past_sla  INTEGER NOT NULL DEFAULT 0,
            complaints_reopened  INTEGER NOT NULL DEFAULT 0,
            latest_csat          INTEGER,
            latest_nps           INTEGER,
            csat_average         NUMERIC(4, 2),
            nps                  NUMERIC(5, 1),
            overdue_amount       NUMERIC(18, 4) NOT NULL DEFAULT 0,
            overdue_bucket       TEXT,
            credit_holds         INTEGER NOT NULL DEFAULT 0,
            alert_id             TEXT,
            facts_token          UUID,
            assessed_at          TIMESTAMPTZ,
            updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        CREATE INDEX customer_segments_tier_idx ON customer_segments (value_tier);
        CREATE INDEX customer_segments_segment_idx ON customer_segments (rfm_segment);
        CREATE INDEX customer_segments_activity_idx ON customer_segments (activity_status);
        CREATE INDEX customer_segments_band_idx ON customer_segments (churn_band);
        CREATE INDEX customer_segments_region_idx ON customer_segments (region);
        CREATE INDEX customer_segments_risk_idx ON customer_segments (churn_score DESC, customer_id);
        CREATE INDEX customer_segments_contribution_idx ON customer_segments (net_contribution DESC, customer_id);
        CREATE TABLE customer_orders (
            customer_id      TEXT NOT NULL,
            order_id         TEXT NOT NULL,
            placed_at        TIMESTAMPTZ,
            amount           NUMERIC(18, 4) NOT NULL,
            currency         TEXT,
            cancelled        BOOLEAN NOT NULL,
            cancelled_amount NUMERIC(18, 4) NOT NULL,
            returned_amount  NUMERIC(18, 4) NOT NULL,
            credit_held      BOOLEAN NOT NULL,
            due_date         DATE,
            overdue_amount   NUMERIC(18, 4) NOT NULL,
            paid_in_full     BOOLEAN NOT NULL,
            PRIMARY KEY (customer_id, order_id)
        );
        CREATE TABLE customer_complaints (
            customer_id    TEXT NOT NULL,
            complaint_id   TEXT NOT NULL,
            filed_at       TIMESTAMPTZ,
            category       TEXT,
            severity       TEXT,
            acknowledge_by TIMESTAMPTZ,
            resolve_by     TIMESTAMPTZ,
            status         TEXT NOT NULL,
            acknowledged   BOOLEAN NOT NULL,
            escalated      BOOLEAN NOT NULL,
            reopened_count INTEGER NOT NULL,
            PRIMARY KEY (customer_id, complaint_id)
        );
        CREATE TABLE customer_surveys (
            customer_id TEXT NOT NULL,
            survey_id   TEXT NOT NULL,
            answered_at TIMESTAMPTZ NOT NULL,
            csat        INTEGER,
            nps         INTEGER,
            PRIMARY KEY (customer_id, survey_id)
        );
        CREATE TABLE calibrations (
            id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            effective_at     TIMESTAMPTZ NOT NULL,
            trigger          TEXT NOT NULL,
            mode             TEXT NOT NULL,
            cut_points       JSONB NOT NULL,
            rfm_breakpoints  JSONB,
            population       INTEGER NOT NULL,
            policy_version   TEXT NOT NULL,
            rfm_grid_version TEXT NOT NULL,
            consumer_offsets JSONB NOT NULL,
            customers_graded INTEGER NOT NULL,
            tier_changes     INTEGER NOT NULL,
            recorded_at      TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        CREATE TABLE segment_history (
            id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            customer_id    TEXT NOT NULL,
            kind           TEXT NOT NULL,
            previous       TEXT,
            new            TEXT,
            reason         TEXT NOT NULL,
            details        JSONB NOT NULL,
            calibration_id BIGINT,
            occurred_at    TIMESTAMPTZ NOT NULL,
            cause_event_id UUID
        );
        CREATE INDEX segment_history_customer_idx ON segment_history (customer_id, id);
        CREATE TABLE churn_alerts (
            alert_id      TEXT PRIMARY KEY,
            customer_id   TEXT NOT NULL,
            state         TEXT NOT NULL,
            raised_at     TIMESTAMPTZ NOT NULL,
            raised_score  INTEGER NOT NULL,
            reasons       JSONB NOT NULL,
            last_score    INTEGER NOT NULL,
            last_seen_at  TIMESTAMPTZ NOT NULL,
            occurrences   INTEGER NOT NULL,
            snoozed_until TIMESTAMPTZ,
            handled_at    TIMESTAMPTZ,
            handled_by    TEXT,
            closed_at     TIMESTAMPTZ,
            close_reason  TEXT,
            rearmed       BOOLEAN NOT NULL
        );
        CREATE UNIQUE INDEX churn_alerts_one_live_per_customer ON churn_alerts (customer_id) WHERE state <> 'closed';
        CREATE INDEX churn_alerts_state_idx ON churn_alerts (state, raised_at);
        CREATE TABLE alert_log (
            id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            alert_id    TEXT NOT NULL,
            customer_id TEXT NOT NULL,
            action      TEXT NOT NULL,
            at          TIMESTAMPTZ NOT NULL,
            actor       TEXT,
            score       INTEGER,
            detail      JSONB NOT NULL
        );
        CREATE INDEX alert_log_alert_idx ON alert_log (alert_id, id)
        """
    )


def downgrade() -> None:
    run_script(
        """
        DROP TABLE alert_log;
        DROP TABLE churn_alerts;
        DROP TABLE segment_history;
        DROP TABLE calibrations;
        DROP TABLE customer_surveys;
        DROP TABLE customer_complaints;
        DROP TABLE customer_orders;
        DELETE FROM consumer_offsets;
        DELETE FROM inbox;
        DROP TABLE customer_segments;
        CREATE TABLE customer_segments (
            customer_id          TEXT PRIMARY KEY,
            registered           BOOLEAN NOT NULL,
            company_name         TEXT,
            region               TEXT,
            stage                TEXT,
            orders_count         INTEGER NOT NULL,
            cancelled_orders     INTEGER NOT NULL,
            gross_revenue        NUMERIC(18, 4) NOT NULL,
            cancelled_amount     NUMERIC(18, 4) NOT NULL,
            returned_amount      NUMERIC(18, 4) NOT NULL,
            net_revenue          NUMERIC(18, 4) NOT NULL,
            currency             TEXT,
            first_order_at       TIMESTAMPTZ,
            last_order_at        TIMESTAMPTZ,
            complaints_total     INTEGER NOT NULL,
            open_complaints      INTEGER NOT NULL,
            value_tier           TEXT NOT NULL,
            events_applied       INTEGER NOT NULL,
            last_event_at        TIMESTAMPTZ,
            segmentation_version INTEGER NOT NULL,
            updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        CREATE INDEX customer_segments_tier_idx ON customer_segments (value_tier);
        CREATE INDEX customer_segments_region_idx ON customer_segments (region)
        """
    )
