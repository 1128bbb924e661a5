//! `/v1/chat/completions` requests → `ValidChat` → `Prepared` (prompt tokens + constraint).

use serde_json::{Map, Value};

use super::messages::{normalize, TemplateCaps};
use super::{check_top_logprobs, sampling, tokenize_error, ValidSampling};
use crate::constrained::{json_grammar, CompiledGrammar};
use crate::error::ApiError;
use crate::protocol::{ChatCompletionRequest, FunctionDef, SamplingFields, ToolChoice};
use crate::state::AppState;
use crate::tool_parsers::{self, ToolFormat};

/// What the output must look like.
#[derive(Debug, Clone)]
pub enum ConstraintPlan {
    /// JSON matching this schema (`json_object` is `{"type": "object"}`).
    Json(Value),
    /// One (or, if `parallel`, several) calls to these functions in the model's format.
    Tools {
        functions: Vec<FunctionDef>,
        parallel: bool,
    },
    /// `tool_choice: auto`: free text, and any call must be one of these functions with valid
    /// arguments (the format's lazy grammar; none if the format or vocabulary has none).
    AutoTools {
        functions: Vec<FunctionDef>,
        parallel: bool,
    },
}

/// A checked chat request.
pub struct ValidChat {
    pub model: String,
    pub messages: Vec<Value>,
    /// Tool declarations for a template that reads them.
    pub template_tools: Option<Vec<Value>>,
    /// Set when tool calls are to be parsed out of the output.
    pub tool_format: Option<&'static dyn ToolFormat>,
    /// The request's tools (a parser may type call arguments by their schemas).
    pub functions: Vec<FunctionDef>,
    /// `parallel_tool_calls` (default true): false allows at most one call per answer.
    pub parallel_tool_calls: bool,
    pub constraint: Option<ConstraintPlan>,
    pub sampling: ValidSampling,
    /// Extra chat-template variables: `chat_template_kwargs` and `reasoning_effort`.
    pub template_vars: Map<String, Value>,
}

/// A request ready for the engine.
pub struct Prepared {
    pub prompt: Vec<u32>,
    pub params: lathe_core::SamplingParams,
    pub grammar: Option<CompiledGrammar>,
    /// The prompt closes the think block itself (Qwen3 with `enable_thinking: false`): the
    /// output is all answer, no reasoning.
    pub thinking_off: bool,
}

pub fn validate(
    state: &AppState,
    req: ChatCompletionRequest,
    fields: SamplingFields,
) -> Result<ValidChat, ApiError> {
    let model = state.resolve_model(req.model.as_deref())?;
    let info = state.engine()?.info().clone();
    if req.functions.is_some() || req.function_call.is_some() {
        return Err(ApiError::invalid(
            "functions".to_string(),
            "`functions`/`function_call` are deprecated; use `tools`",
        ));
    }
    let top = match (req.logprobs.unwrap_or(false), req.top_logprobs) {
        (true, k) => Some(check_top_logprobs(k.unwrap_or(0), "top_logprobs")?),
        (false, Some(k)) if k > 0 => {
            return Err(ApiError::invalid(
                "top_logprobs".to_string(),
                "top_logprobs requires logprobs: true",
            ))
        }
        (false, _) => None,
    };
    let max_tokens = match (req.max_completion_tokens, req.max_tokens) {
        (Some(v), _) => Some((v, "max_completion_tokens")),
        (None, Some(v)) => Some((v, "max_tokens")),
        (None, None) => None,
    };
    let sampling = sampling(fields, max_tokens, top, state.options())?;

    let template_vars = template_vars(req.chat_template_kwargs, req.reasoning_effort)?;
    let tools = check_tools(req.tools.as_deref().unwrap_or(&[]))?;
    let choice = tool_choice(req.tool_choice, &tools)?;
    let registry_format = info.tool_format.as_str();
    let format = tool_parsers::format(registry_format);
    if !matches!(choice, Choice::None) && format.is_none() {
        return Err(ApiError::invalid(
            "tools".to_string(),
            format!(
                "model `{model}` has no supported tool-call format (tool_format `{registry_format}`, from its chat template or models.toml; \
                 implemented: {})",
                tool_parsers::IMPLEMENTED.join(", ")
            ),
        ));
    }
    let parallel = req.parallel_tool_calls.unwrap_or(true);
    let mut constraint = match &choice {
        Choice::Required => Some(ConstraintPlan::Tools {
            functions: tools.clone(),
            parallel,
        }),
        Choice::Named(name) => Some(ConstraintPlan::Tools {
            functions: tools.iter().filter(|t| &t.name == name).cloned().collect(),
            parallel: false,
        }),
        Choice::Auto if state.options().tool_call_grammar => Some(ConstraintPlan::AutoTools {
            functions: tools.clone(),
            parallel,
        }),
        Choice::None | Choice::Auto => None,
    };
    if let Some(rf) = req.response_format {
        let json = response_format(rf)?;
        match (&constraint, json) {
            (_, None) => {}
            // JSON output wins over calls the model may make: it constrains the whole answer.
            (None | Some(ConstraintPlan::AutoTools { .. }), Some(schema)) => {
                constraint = Some(ConstraintPlan::Json(schema))
            }
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "response_format".to_string(),
                    "response_format cannot be combined with a forced tool call (tool_choice required or named)",
                ))
            }
        }
    }
    let decls: Vec<Value> = req
        .tools
        .unwrap_or_default()
        .iter()
        .map(|t| serde_json::to_value(t).unwrap_or_default())
        .collect();
    let offered = !matches!(choice, Choice::None) && !decls.is_empty();
    let caps = TemplateCaps::of(info.tokenizer.chat_template());
    let messages = normalize(&req.messages, offered.then_some(&decls[..]), format, caps)?;
    Ok(ValidChat {
        model,
        messages,
        template_tools: (offered && caps.tools).then_some(decls),
        tool_format: if matches!(choice, Choice::None) {
            None
        } else {
            format
        },
        functions: tools,
        parallel_tool_calls: parallel,
        constraint,
        sampling,
        template_vars,
    })
}

/// `reasoning_effort` values: OpenAI's (`none` and `xhigh` too, which Responses clients such as
/// Codex may send).
pub const REASONING_EFFORTS: &[&str] = &["none", "minimal", "low", "medium", "high", "xhigh"];

/// The extra template variables of a request: every key of `chat_template_kwargs` (an object;
/// the variables the server sets itself, `messages`, `tools`, `add_generation_prompt`,
/// `bos_token` and `eos_token`, are refused), then `reasoning_effort` (which wins over a
/// `reasoning_effort` key of the kwargs).
fn template_vars(
    kwargs: Option<Value>,
    effort: Option<Value>,
) -> Result<Map<String, Value>, ApiError> {
    let mut vars = match kwargs {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(ApiError::invalid(
                "chat_template_kwargs".to_string(),
                format!(
                    "`chat_template_kwargs` must be an object of template variables, not {}",
                    json_kind(&other)
                ),
            ))
        }
    };
    if let Some(key) = lathe_engine::chat_template::RESERVED_VARS
        .iter()
        .find(|k| vars.contains_key(**k))
    {
        return Err(ApiError::invalid(
            format!("chat_template_kwargs.{key}"),
            format!(
                "`{key}` is set by the server and cannot be overridden in `chat_template_kwargs`"
            ),
        ));
    }
    match effort {
        None | Some(Value::Null) => {}
        Some(Value::String(e)) if REASONING_EFFORTS.contains(&e.as_str()) => {
            vars.insert("reasoning_effort".into(), Value::String(e));
        }
        Some(other) => {
            return Err(ApiError::invalid(
                "reasoning_effort".to_string(),
                format!(
                    "`reasoning_effort` must be one of {}, not {other}",
                    REASONING_EFFORTS.join(", ")
                ),
            ))
        }
    }
    Ok(vars)
}

/// "a string", "an array", … for error messages.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Whether a rendered prompt ends inside a closed think block (`…</think>\n\n`): the
/// template turned thinking off (Qwen3's `enable_thinking: false`).
fn closes_thinking(prompt: &str) -> bool {
    prompt.trim_end().ends_with("</think>")
}

/// Renders, tokenizes, fits the context window and compiles the constraint (blocking).
pub fn prepare(state: &AppState, v: &ValidChat) -> Result<Prepared, ApiError> {
    let info = state.engine()?.info().clone();
    if info.chat_template.is_none() {
        return Err(ApiError::bad_request(format!(
            "model `{}` has no chat template (a base model); use /v1/completions",
            v.model
        )));
    }
    let text = info
        .render_chat_with(&v.messages, v.template_tools.as_deref(), &v.template_vars)
        .map_err(|e| {
            ApiError::invalid(
                "messages".to_string(),
                format!("the chat template failed: {e:#}"),
            )
        })?;
    let prompt = info
        .tokenizer
        .encode(&text, false)
        .map_err(tokenize_error)?;
    let max_tokens = v
        .sampling
        .fit(prompt.len(), info.max_model_len, "messages")?;
    let params = lathe_core::SamplingParams {
        max_tokens,
        ..v.sampling.params.clone()
    };
    let grammar = match &v.constraint {
        None => None,
        Some(plan) => compile(state, plan, v.tool_format)?,
    };
    Ok(Prepared {
        thinking_off: closes_thinking(&text),
        prompt,
        params,
        grammar,
    })
}

/// The plan's grammar; `None` when an auto-mode plan has no grammar for this format or
/// vocabulary, or its grammar does not compile (auto mode then stays unconstrained, as without
/// the lazy grammar).
fn compile(
    state: &AppState,
    plan: &ConstraintPlan,
    format: Option<&dyn ToolFormat>,
) -> Result<Option<CompiledGrammar>, ApiError> {
    let compiler = state.grammar_compiler()?;
    let format = || format.ok_or_else(|| ApiError::internal("tool calls without a tool format"));
    let (lark, param) = match plan {
        ConstraintPlan::Json(schema) => (
            json_grammar(schema)
                .map_err(|e| ApiError::invalid("response_format".to_string(), e))?,
            "response_format",
        ),
        ConstraintPlan::Tools {
            functions,
            parallel,
        } => (
            format()?.required_grammar(functions, *parallel, &|s| compiler.literal(s)),
            "tools",
        ),
        ConstraintPlan::AutoTools {
            functions,
            parallel,
        } => {
            let Some(lark) = format()?.auto_grammar(functions, *parallel, &*compiler) else {
                return Ok(None);
            };
            (lark, "tools")
        }
    };
    let start = std::time::Instant::now();
    let compiled = crate::constrained::GrammarCompiler::compile(&compiler, &lark);
    tracing::debug!(
        ms = start.elapsed().as_millis() as u64,
        param,
        "grammar compiled"
    );
    match compiled {
        Ok(g) => Ok(Some(g)),
        Err(e) if matches!(plan, ConstraintPlan::AutoTools { .. }) => {
            tracing::warn!(error = %e, "the auto tool-call grammar does not compile; unconstrained");
            Ok(None)
        }
        Err(e) => Err(ApiError::invalid(
            param.to_string(),
            format!("invalid schema for constrained decoding: {e}"),
        )),
    }
}

enum Choice {
    None,
    Auto,
    Required,
    Named(String),
}

fn tool_choice(choice: Option<ToolChoice>, tools: &[FunctionDef]) -> Result<Choice, ApiError> {
    let param = || "tool_choice".to_string();
    let c = match choice {
        None if tools.is_empty() => Choice::None,
        None => Choice::Auto,
        Some(ToolChoice::Mode(m)) => match m.as_str() {
            "none" => Choice::None,
            "auto" => Choice::Auto,
            "required" => Choice::Required,
            other => {
                return Err(ApiError::invalid(
                    param(),
                    format!("unknown tool_choice `{other}`"),
                ))
            }
        },
        Some(ToolChoice::Named(n)) => {
            if n.kind != "function" {
                return Err(ApiError::invalid(
                    param(),
                    format!("tool_choice type must be `function`, got `{}`", n.kind),
                ));
            }
            if !tools.iter().any(|t| t.name == n.function.name) {
                return Err(ApiError::invalid(
                    param(),
                    format!(
                        "tool_choice names `{}`, which is not in tools",
                        n.function.name
                    ),
                ));
            }
            Choice::Named(n.function.name)
        }
    };
    match c {
        Choice::None | Choice::Auto if tools.is_empty() => Ok(Choice::None),
        _ if tools.is_empty() => Err(ApiError::invalid(param(), "tool_choice requires tools")),
        c => Ok(c),
    }
}

/// Tool declarations: functions only, names as OpenAI allows, object parameter schemas.
fn check_tools(tools: &[crate::protocol::Tool]) -> Result<Vec<FunctionDef>, ApiError> {
    let mut out: Vec<FunctionDef> = Vec::with_capacity(tools.len());
    for (i, t) in tools.iter().enumerate() {
        let p = |f: &str| format!("tools[{i}].{f}");
        if t.kind != "function" {
            return Err(ApiError::invalid(
                p("type"),
                format!("tool type must be `function`, got `{}`", t.kind),
            ));
        }
        let name = &t.function.name;
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            return Err(ApiError::invalid(
                p("function.name"),
                format!("invalid function name `{name}` (a-z, A-Z, 0-9, _ and -, at most 64)"),
            ));
        }
        if out.iter().any(|f| &f.name == name) {
            return Err(ApiError::invalid(
                p("function.name"),
                format!("duplicate function name `{name}`"),
            ));
        }
        if let Some(params) = &t.function.parameters {
            if !params.is_object() {
                return Err(ApiError::invalid(
                    p("function.parameters"),
                    "parameters must be a JSON schema object",
                ));
            }
            super::schema::check_schema(params).map_err(|e| {
                ApiError::invalid(
                    p("function.parameters"),
                    format!("invalid JSON schema for function `{name}`: {e}"),
                )
            })?;
        }
        out.push(t.function.clone());
    }
    Ok(out)
}

/// The schema `response_format` asks for, if any.
fn response_format(rf: crate::protocol::ResponseFormat) -> Result<Option<Value>, ApiError> {
    let param = |f: &str| format!("response_format{f}");
    match rf.kind.as_str() {
        "text" => Ok(None),
        "json_object" => Ok(Some(serde_json::json!({"type": "object"}))),
        "json_schema" => {
            let js = rf.json_schema.ok_or_else(|| {
                ApiError::invalid(param(".json_schema"), "json_schema is required")
            })?;
            match js.schema {
                Some(s @ Value::Object(_)) => Ok(Some(s)),
                Some(_) => Err(ApiError::invalid(
                    param(".json_schema.schema"),
                    "the schema must be a JSON object",
                )),
                None => Ok(Some(serde_json::json!({"type": "object"}))),
            }
        }
        other => Err(ApiError::invalid(
            param(".type"),
            format!("unknown response_format type `{other}` (text, json_object, json_schema)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn template_vars_merge_kwargs_and_effort() {
        let vars = template_vars(
            Some(json!({"enable_thinking": false, "reasoning_effort": "high"})),
            Some(json!("low")),
        )
        .unwrap();
        assert_eq!(
            Value::Object(vars),
            json!({"enable_thinking": false, "reasoning_effort": "low"})
        );
        assert!(template_vars(None, Some(Value::Null)).unwrap().is_empty());
        let e = template_vars(Some(json!("x")), None).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("chat_template_kwargs"));
        let e = template_vars(Some(json!({"bos_token": "<s>"})), None).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("chat_template_kwargs.bos_token"));
        let e = template_vars(None, Some(json!("max"))).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("reasoning_effort"));
    }

    #[test]
    fn a_prompt_ending_in_a_closed_think_block_turns_reasoning_off() {
        assert!(closes_thinking(
            "<|im_start|>assistant\n<think>\n\n</think>\n\n"
        ));
        assert!(!closes_thinking("<|im_start|>assistant\n<think>\n"));
        assert!(!closes_thinking("<|im_start|>assistant\n"));
    }
}
