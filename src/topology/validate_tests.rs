//! Validation rules, each with its exact message (see issue: every rule tested).
