//! [`Pending`]: a request's record before its answer.

use super::*;

/// What is known about a request before its answer.
pub(super) struct Pending {
    pub(super) record: UsageRecord,
    pub(super) input_estimate: u64,
    pub(super) input_exact: bool,
    pub(super) started: Instant,
    /// When the gateway received the request (its timeout counts from there).
    pub(super) received_at: std::time::Instant,
    /// Who waits for the recorded usage ([`UsageReport`]), if anyone.
    pub(super) report: Option<UsageReport>,
}

impl Pending {
    /// Records the request; an unreported output large enough to count off the worker
    /// ([`offload::is_large`]) is counted and recorded on the blocking pool.
    pub(super) fn finish(
        self,
        accounting: &Arc<Accounting>,
        usage: Option<&Usage>,
        output_text: Option<String>,
        outcome: Outcome,
        status: u16,
    ) {
        let large_output = output_text.as_ref().is_some_and(|text| offload::is_large(text.len() as u64));
        if usage.is_none() && large_output {
            let accounting = accounting.clone();
            offload::detach(move || self.record(&accounting, None, output_text.as_deref(), outcome, status));
            return;
        }
        self.record(accounting, usage, output_text.as_deref(), outcome, status);
    }

    pub(super) fn record(
        mut self,
        accounting: &Accounting,
        usage: Option<&Usage>,
        output_text: Option<&str>,
        outcome: Outcome,
        status: u16,
    ) {
        let record = &mut self.record;
        record.latency = self.started.elapsed();
        record.outcome = outcome;
        record.status = status;
        match usage {
            Some(usage) => {
                record.input_tokens = usage.prompt_tokens;
                record.output_tokens = usage.completion_tokens;
                record.cached_tokens = usage.cached_tokens();
                record.reasoning_tokens = usage.reasoning_tokens();
                record.source = UsageSource::Reported;
            }
            None => {
                let model = record.model_served.as_deref().unwrap_or(&record.model_requested);
                let (output, output_exact) = match output_text {
                    Some(text) if !text.is_empty() => estimate::text(&accounting.tokenizers, model, text),
                    _ => (0, true),
                };
                // A failed request before any output is billed nothing.
                record.input_tokens =
                    if matches!(outcome, Outcome::Error | Outcome::Refused) && output_text.is_none() {
                        0
                    } else {
                        self.input_estimate
                    };
                record.output_tokens = output;
                record.source = if self.input_exact && output_exact {
                    UsageSource::Counted
                } else {
                    UsageSource::Estimated
                };
            }
        }
        record.clamp_to_bounds();
        let model = record.model_served.as_deref().unwrap_or(&record.model_requested);
        record.cost = accounting
            .prices
            .price(record.provider.as_deref(), model)
            .map(|price| price.cost(record.input_tokens, record.cached_tokens, record.output_tokens))
            .unwrap_or(0.0);
        if record.cache_hit {
            record.saved_cost = record.cost;
            record.cost = 0.0;
        }
        if let Some(report) = self.report.take() {
            let record = &self.record;
            let usage = RecordedUsage {
                input_tokens: record.input_tokens,
                output_tokens: record.output_tokens,
                cost: record.cost,
            };
            report.send(usage);
        }
        accounting.recorder.record(self.record);
    }
}
