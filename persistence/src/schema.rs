//! The one portable schema for both backends. Only the portable types are used:
//! Text, BigInt, Integer, Bool, Date and Timestamp (UTC `NaiveDateTime`).
//! `tests/schema_drift.rs` compares this file with both migrated databases.

diesel::table! {
    staff_users (id) {
        id -> Text,
        username -> Text,
        password_hash -> Text,
        role -> Text,
        office_id -> Nullable<Text>,
        disabled -> Bool,
        failed_attempts -> Integer,
        locked_until -> Nullable<Timestamp>,
        token_version -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    registry_people (national_id) {
        national_id -> Text,
        serial -> Text,
        first_name -> Text,
        last_name -> Text,
        father_name -> Text,
        mother_name -> Text,
        gender -> Text,
        birth_date_jalali -> Text,
        alive -> Bool,
        serial_changed_at -> Nullable<Timestamp>,
        mobile -> Nullable<Text>,
    }
}

diesel::table! {
    sandbox_mobile_owners (mobile, national_id) {
        mobile -> Text,
        national_id -> Text,
    }
}

diesel::table! {
    citizens (id) {
        id -> Text,
        nid_hash -> Text,
        nid_enc -> Text,
        serial_enc -> Text,
        serial_verified -> Bool,
        created_at -> Timestamp,
        last_entry_at -> Timestamp,
    }
}

diesel::table! {
    captcha_uses (nonce) {
        nonce -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    applications (id) {
        id -> Text,
        citizen_id -> Text,
        cycle -> Integer,
        state -> Text,
        identity_status -> Text,
        payment_status -> Text,
        appointment_status -> Text,
        slot_office_id -> Nullable<Text>,
        slot_date -> Nullable<Date>,
        slot_shift -> Nullable<Text>,
        hold_expires_at -> Nullable<Timestamp>,
        can_leave_home -> Nullable<Bool>,
        can_climb_stairs -> Nullable<Bool>,
        pupils_visible -> Nullable<Bool>,
        fingers_intact -> Nullable<Bool>,
        edits_left -> Integer,
        no_show_ban_until -> Nullable<Date>,
        tracking_code -> Nullable<Text>,
        paid_at -> Nullable<Timestamp>,
        delivery_office_id -> Nullable<Text>,
        reissue_required -> Bool,
        home_visit_address -> Bool,
        reissue_reason -> Nullable<Text>,
        previous_application_id -> Nullable<Text>,
        nid_hash -> Text,
        nid_enc -> Text,
        serial_enc -> Text,
        personal_enc -> Text,
        mobile_hash -> Text,
        mobile_enc -> Text,
        family_enc -> Nullable<Text>,
        identity_attempts -> Integer,
        identity_next_check_at -> Nullable<Timestamp>,
        identity_pending_since -> Nullable<Timestamp>,
        created_by_client -> Nullable<Text>,
        version -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        displaced_at -> Nullable<Timestamp>,
        withdrawal_reason_enc -> Nullable<Text>,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        channel -> Text,
        recipient_enc -> Text,
        recipient_hint -> Text,
        template -> Text,
        params_enc -> Text,
        lang -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_until -> Nullable<Timestamp>,
        provider_id -> Nullable<Text>,
        last_error -> Nullable<Text>,
        application_id -> Nullable<Text>,
        dedupe_key -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        claim_token -> Nullable<Text>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Text,
        at -> Timestamp,
        actor_kind -> Text,
        actor_id -> Nullable<Text>,
        action -> Text,
        application_id -> Nullable<Text>,
        request_id -> Nullable<Text>,
        details -> Nullable<Text>,
        client_ip -> Nullable<Text>,
    }
}

diesel::table! {
    offices (id) {
        id -> Text,
        code -> Text,
        name -> Text,
        kind -> Text,
        province -> Text,
        city -> Text,
        city_code -> Text,
        phone -> Text,
        address -> Text,
        step_free_access -> Bool,
        eye_exception_capture -> Bool,
        fingerprint_exception_capture -> Bool,
        home_visits -> Bool,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    office_capacity (office_id, weekday, shift) {
        office_id -> Text,
        weekday -> Integer,
        shift -> Text,
        capacity -> Integer,
    }
}

diesel::table! {
    capacity_overrides (office_id, date, shift) {
        office_id -> Text,
        date -> Date,
        shift -> Text,
        capacity -> Integer,
    }
}

diesel::table! {
    office_closures (office_id, date, shift) {
        office_id -> Text,
        date -> Date,
        shift -> Text,
        reason -> Text,
    }
}

diesel::table! {
    holidays (date) {
        date -> Date,
        name -> Text,
    }
}

diesel::table! {
    slots (office_id, date, shift) {
        office_id -> Text,
        date -> Date,
        shift -> Text,
        capacity -> Integer,
        taken -> Integer,
        closed -> Bool,
        city_code -> Text,
        rank_key -> Nullable<BigInt>,
    }
}

diesel::table! {
    slot_counts (date, city_code) {
        date -> Date,
        city_code -> Text,
        ranked -> Integer,
    }
}

diesel::table! {
    payments (id) {
        id -> Text,
        order_id -> BigInt,
        application_id -> Text,
        gateway -> Text,
        amount -> BigInt,
        status -> Text,
        token -> Nullable<Text>,
        redirect_url -> Nullable<Text>,
        reference -> Nullable<Text>,
        card_mask -> Nullable<Text>,
        bank_code -> Nullable<Text>,
        expires_at -> Timestamp,
        attempts -> Integer,
        next_check_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        version -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        settled_at -> Nullable<Timestamp>,
        reversal_attempts -> Integer,
        reversal_error -> Nullable<Text>,
    }
}

diesel::table! {
    sandbox_bank_payments (token) {
        token -> Text,
        order_id -> BigInt,
        amount -> BigInt,
        merchant -> Text,
        callback_url -> Text,
        outcome -> Nullable<Text>,
        reference -> Nullable<Text>,
        verified -> Bool,
        reversed -> Bool,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    fee_rates (id) {
        id -> Text,
        kind -> Text,
        amount -> BigInt,
        effective_from -> Date,
        created_at -> Timestamp,
        created_by -> Nullable<Text>,
    }
}

diesel::table! {
    enrollments (application_id) {
        application_id -> Text,
        office_id -> Text,
        postal_code_enc -> Text,
        address_enc -> Text,
        landline_enc -> Text,
        documents_checked -> Bool,
        fingerprints -> Text,
        face -> Text,
        exception_note_enc -> Nullable<Text>,
        capture_reference -> Text,
        counter_fee -> BigInt,
        completed_by -> Text,
        completed_at -> Timestamp,
        delivered_by -> Nullable<Text>,
        delivered_at -> Nullable<Timestamp>,
        delivery_office_id -> Nullable<Text>,
        delivery_fee -> Nullable<BigInt>,
        latin_names_enc -> Nullable<Text>,
    }
}

diesel::table! {
    legacy_imports (legacy_id) {
        legacy_id -> Text,
        application_id -> Text,
        row_digest -> Text,
        imported_at -> Timestamp,
    }
}

diesel::table! {
    production_leases (application_id) {
        application_id -> Text,
        client_id -> Text,
        leased_until -> Timestamp,
    }
}

diesel::table! {
    home_visits (application_id) {
        application_id -> Text,
        city_code -> Text,
        details_enc -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        scheduled_by -> Nullable<Text>,
        scheduled_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    production_events (event_id) {
        event_id -> Text,
        application_id -> Text,
        client_id -> Text,
        kind -> Text,
        office_id -> Nullable<Text>,
        note -> Nullable<Text>,
        result_state -> Text,
        received_at -> Timestamp,
    }
}

diesel::table! {
    clients (client_id) {
        client_id -> Text,
        name -> Text,
        kind -> Text,
        secret_hash -> Text,
        scopes -> Text,
        office_id -> Nullable<Text>,
        disabled -> Bool,
        rate_per_minute -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        token_version -> Integer,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        audience -> Text,
        subject -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sandbox_sms (id) {
        id -> Text,
        recipient_hash -> Text,
        recipient_enc -> Text,
        recipient_hint -> Text,
        text_enc -> Text,
        created_at -> Timestamp,
        local_id -> Nullable<Text>,
    }
}

diesel::table! {
    idempotency_keys (scope, key) {
        scope -> Text,
        key -> Text,
        request_hash -> Text,
        status -> Text,
        response_status -> Nullable<Integer>,
        response_body -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    sandbox_emails (id) {
        id -> Text,
        recipient_hash -> Text,
        recipient_enc -> Text,
        recipient_hint -> Text,
        subject -> Text,
        body_enc -> Text,
        attachment_names -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    public_lookup_counts (nid_hash, purpose, day) {
        nid_hash -> Text,
        purpose -> Text,
        day -> Date,
        hits -> Integer,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    efolder_accounts (id) {
        id -> Text,
        subject_hash -> Text,
        person_type -> Text,
        legal_id -> Nullable<Text>,
        nid_hash -> Text,
        national_id_enc -> Text,
        gender_enc -> Text,
        first_name_enc -> Text,
        last_name_enc -> Text,
        father_name_enc -> Text,
        mobile_enc -> Text,
        mobile_hint -> Text,
        postal_code_enc -> Text,
        username -> Text,
        password_hash -> Text,
        must_change_password -> Bool,
        token_version -> Integer,
        failed_logins -> Integer,
        locked_until -> Nullable<Timestamp>,
        credentials_delivery -> Text,
        last_login_at -> Nullable<Timestamp>,
        password_changed_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        credentials_undelivered_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    efolder_reset_codes (account_id) {
        account_id -> Text,
        code_hash -> Text,
        attempts -> Integer,
        expires_at -> Timestamp,
        sent_at -> Timestamp,
    }
}

diesel::table! {
    attempt_locks (key) {
        key -> Text,
        failures -> Integer,
        locked_until -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    attempt_counts (key, window_start) {
        key -> Text,
        window_start -> Timestamp,
        hits -> Integer,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    unsealed_values (table_name, row_id, column_name) {
        table_name -> Text,
        row_id -> Text,
        column_name -> Text,
        value -> Text,
    }
}

diesel::table! {
    refunds (id) {
        id -> Text,
        application_id -> Text,
        payment_id -> Text,
        amount -> BigInt,
        iban_enc -> Text,
        iban_hint -> Text,
        status -> Text,
        method -> Nullable<Text>,
        bank_reference -> Nullable<Text>,
        reversal_error -> Nullable<Text>,
        requested_at -> Timestamp,
        settled_at -> Nullable<Timestamp>,
        settled_by -> Nullable<Text>,
        version -> Integer,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(applications -> citizens (citizen_id));
diesel::joinable!(slots -> offices (office_id));
diesel::joinable!(office_capacity -> offices (office_id));
diesel::joinable!(payments -> applications (application_id));
diesel::joinable!(home_visits -> applications (application_id));
diesel::joinable!(refunds -> applications (application_id));

diesel::joinable!(efolder_reset_codes -> efolder_accounts (account_id));

diesel::table! {
    catalog_version (id) {
        id -> Integer,
        version -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    catalog_version,
    staff_users,
    efolder_accounts,
    efolder_reset_codes,
    registry_people,
    sandbox_mobile_owners,
    citizens,
    captcha_uses,
    applications,
    outbox,
    audit_log,
    offices,
    office_capacity,
    capacity_overrides,
    office_closures,
    holidays,
    slot_counts,
    slots,
    payments,
    sandbox_bank_payments,
    fee_rates,
    enrollments,
    home_visits,
    production_events,
    production_leases,
    legacy_imports,
    clients,
    idempotency_keys,
    sandbox_sms,
    sandbox_emails,
    public_lookup_counts,
    attempt_locks,
    attempt_counts,
    sessions,
    unsealed_values,
    refunds,
);
