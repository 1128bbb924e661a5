//! Turning what a user wrote into prompt tokens: chat messages through the model's template, or
//! raw text for plain completion. Shared by the CLI and the server.

use anyhow::{Context, Result};
use serde_json::{Map, Value};

use crate::engine::ModelInfo;

impl ModelInfo {
    /// Renders `messages` (OpenAI shape) with the chat template and tokenizes the result. The
    /// template writes any BOS it wants itself, so no special tokens are added here.
    pub fn encode_chat(&self, messages: &[Value], tools: Option<&[Value]>) -> Result<Vec<u32>> {
        self.encode_chat_with(messages, tools, &Map::new())
    }

    /// [`Self::encode_chat`] with extra template variables (see [`Self::render_chat_with`]).
    pub fn encode_chat_with(
        &self,
        messages: &[Value],
        tools: Option<&[Value]>,
        vars: &Map<String, Value>,
    ) -> Result<Vec<u32>> {
        let text = self.render_chat_with(messages, tools, vars)?;
        self.tokenizer.encode(&text, false)
    }

    /// The chat template's output text.
    pub fn render_chat(&self, messages: &[Value], tools: Option<&[Value]>) -> Result<String> {
        self.render_chat_with(messages, tools, &Map::new())
    }

    /// The chat template's output text with extra template variables (`chat_template_kwargs`,
    /// `reasoning_effort`; see [`crate::chat_template::ChatTemplate::render_with`]).
    pub fn render_chat_with(
        &self,
        messages: &[Value],
        tools: Option<&[Value]>,
        vars: &Map<String, Value>,
    ) -> Result<String> {
        let template = self.chat_template.as_ref().with_context(|| {
            format!(
                "model `{}` has no chat template; use plain completion",
                self.id
            )
        })?;
        template.render_with(messages, tools, true, vars)
    }

    /// Plain-completion prompt: the text as is, with BOS when the tokenizer asks for it.
    pub fn encode_raw(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = self.tokenizer.encode(text, false)?;
        if self.tokenizer.add_bos() {
            if let Some(bos) = self.tokenizer.bos_token_id() {
                if ids.first() != Some(&bos) {
                    ids.insert(0, bos);
                }
            }
        }
        Ok(ids)
    }
}
