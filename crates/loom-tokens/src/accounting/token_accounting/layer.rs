//! The layer of [`TokenAccounting`].

use super::*;

/// Records token usage and cost of every request passing through.
#[derive(Clone)]
pub struct TokenAccountingLayer {
    accounting: Arc<Accounting>,
}

impl TokenAccountingLayer {
    /// A layer recording into `recorder`, pricing with `prices` and counting with
    /// `tokenizers`; with `count_input`, every request's input is counted exactly up
    /// front (memory for the tokenizer tables, CPU per request), else only when the
    /// provider reports no usage.
    pub fn new(
        recorder: Arc<UsageRecorder>,
        prices: PriceTable,
        tokenizers: Arc<TokenizerRegistry>,
        count_input: bool,
    ) -> Self {
        TokenAccountingLayer {
            accounting: Arc::new(Accounting {
                recorder,
                prices,
                tokenizers,
                count_input,
                request_timeout: None,
            }),
        }
    }

    /// Tells the layer the gateway drops requests after `timeout`: a request dropped
    /// past it is recorded as timed out (`error`, 504 before its answer, 200 mid-stream),
    /// not as cancelled by its client (499).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.accounting).request_timeout = Some(timeout);
        self
    }
}

impl<S> Layer<S> for TokenAccountingLayer {
    type Service = TokenAccounting<S>;

    fn layer(&self, inner: S) -> TokenAccounting<S> {
        TokenAccounting { inner, accounting: self.accounting.clone() }
    }
}
