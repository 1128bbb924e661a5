//! Constrained decoding hook: a grammar engine (llguidance in lathe-server) implements
//! `TokenConstraint`; the engine thread asks it for the allowed tokens before sampling and
//! tells it the chosen token after. The engine knows nothing about grammars.

/// Restricts which tokens a request may sample.
pub trait TokenConstraint: Send {
    /// Allowed next tokens as a mask over the vocabulary (`true` = allowed); `None` = anything.
    /// Called once before each sampling step of the request.
    fn mask(&mut self, vocab_size: usize) -> Option<Vec<bool>>;
    /// Records the sampled token. Returns false if the token violated the constraint.
    fn accept(&mut self, token: u32) -> bool;
    /// True once the grammar is complete and generation must stop.
    fn is_finished(&self) -> bool;
    /// Why the constraint broke down, once it has (the request then ends with an error, not
    /// a stop that looks like success).
    fn failure(&self) -> Option<String> {
        None
    }
}
