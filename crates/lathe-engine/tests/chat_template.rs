//! Chat-template rendering: the default model's own template, a Qwen2.5-style template with
//! tools and tool results, and the HF environment features real templates rely on.

use std::path::PathBuf;
use std::sync::OnceLock;

use candle_core::quantized::gguf_file;
use lathe_engine::chat_template::ChatTemplate;
use lathe_engine::tokenizer::TextTokenizer;
use serde_json::json;

/// Resolved once per test binary: the first call may download the model, and concurrent
/// tests must not race on that.
fn gguf_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        lathe_models::default_model::test_gguf_path().expect("the test model (SmolLM2)")
    })
    .clone()
}

fn smollm2_template() -> ChatTemplate {
    let mut file = std::fs::File::open(gguf_path()).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let tk = TextTokenizer::from_gguf(&content).unwrap();
    ChatTemplate::new(
        tk.chat_template().expect("template"),
        tk.bos_token().map(str::to_owned),
        tk.eos_token().map(str::to_owned),
    )
    .unwrap()
}

#[test]
fn smollm2_renders_chatml() {
    let tpl = smollm2_template();
    let messages = [
        json!({"role": "system", "content": "You are a terse assistant."}),
        json!({"role": "user", "content": "What is 2+2?"}),
    ];
    let out = tpl.render(&messages, None, true).unwrap();
    assert_eq!(
        out,
        "<|im_start|>system\nYou are a terse assistant.<|im_end|>\n\
         <|im_start|>user\nWhat is 2+2?<|im_end|>\n\
         <|im_start|>assistant\n"
    );
}

#[test]
fn smollm2_inserts_its_default_system_prompt_and_flattens_parts() {
    let tpl = smollm2_template();
    let messages = [json!({"role": "user", "content": [
        {"type": "text", "text": "line one"},
        {"type": "text", "text": "line two"}
    ]})];
    let out = tpl.render(&messages, None, false).unwrap();
    assert_eq!(
        out,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging \
         Face<|im_end|>\n<|im_start|>user\nline one\nline two<|im_end|>\n"
    );
}

#[test]
fn non_text_content_parts_are_rejected() {
    let tpl = smollm2_template();
    let messages = [json!({"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x/y.png"}}
    ]})];
    let err = format!("{:#}", tpl.render(&messages, None, true).unwrap_err());
    assert!(err.contains("image_url"), "{err}");
}

/// Qwen2.5-Instruct's template (tools in the system turn, <tool_call>, <tool_response>).
const QWEN25: &str = r#"{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"#;

#[test]
fn qwen25_style_template_renders_tools_and_tool_results() {
    let tpl = ChatTemplate::new(QWEN25, None, Some("<|im_end|>".into())).unwrap();
    // Keys are written in sorted order so the expected JSON holds whether or not
    // serde_json preserves insertion order.
    let tools = [json!({
        "function": {
            "description": "Get the weather in a city",
            "name": "get_weather",
            "parameters": {
                "properties": {
                    "city": {"description": "City name, e.g. Paris", "type": "string"},
                    "unit": {"enum": ["celsius", "fahrenheit"], "type": "string"}
                },
                "required": ["city"],
                "type": "object"
            }
        },
        "type": "function"
    })];
    let messages = [
        json!({"role": "user", "content": "Weather in Paris?"}),
        json!({"role": "assistant", "content": null, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}
        }]}),
        json!({"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"}),
    ];
    let out = tpl.render(&messages, Some(&tools), true).unwrap();
    let expected = concat!(
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
        "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n",
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n",
        r#"{"function": {"description": "Get the weather in a city", "name": "get_weather", "#,
        r#""parameters": {"properties": {"city": {"description": "City name, e.g. Paris", "#,
        r#""type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"], "type": "string"}}, "#,
        r#""required": ["city"], "type": "object"}}, "type": "function"}"#,
        "\n</tools>\n\nFor each function call, return a json object with function name and ",
        "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n",
        "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n",
        "<|im_start|>user\nWeather in Paris?<|im_end|>\n",
        "<|im_start|>assistant\n<tool_call>\n",
        "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>\n",
        "<|im_start|>user\n<tool_response>\n{\"temp\": 21}\n</tool_response><|im_end|>\n",
        "<|im_start|>assistant\n",
    );
    assert_eq!(out, expected);

    // Without tools the same template takes its plain branch.
    let plain = tpl.render(&messages[..1], None, false).unwrap();
    assert!(
        plain.starts_with("<|im_start|>system\nYou are Qwen"),
        "{plain}"
    );
    assert!(!plain.contains("# Tools"));
}

#[test]
fn raise_exception_surfaces_as_an_error() {
    let src = "{% if messages[0].role != 'user' %}\
               {{ raise_exception('Conversation must start with a user message') }}\
               {% endif %}ok";
    let tpl = ChatTemplate::new(src, None, None).unwrap();
    let err = tpl
        .render(
            &[json!({"role": "assistant", "content": "hi"})],
            None,
            false,
        )
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("Conversation must start with a user message"),
        "{msg}"
    );
    let ok = tpl.render(&[json!({"role": "user", "content": "hi"})], None, false);
    assert_eq!(ok.unwrap(), "ok");
}

#[test]
fn syntax_errors_fail_at_compile_time() {
    assert!(ChatTemplate::new("{% for m in messages %}{{ m }}", None, None).is_err());
}

#[test]
fn python_methods_namespace_loop_controls_and_helpers() {
    let src = r#"{%- set ns = namespace(n=0, last='') %}
{%- for m in messages %}
  {%- if m.content.startswith('skip') %}{% continue %}{% endif %}
  {%- if m.role == 'stop' %}{% break %}{% endif %}
  {%- set ns.n = ns.n + 1 %}
  {%- set ns.last = m.content.strip().upper() %}
{%- endfor %}
{{- ns.n }}|{{ ns.last }}|{{ 'a,b,c'.split(',') | join('+') }}|
{%- for k, v in {'x': 1}.items() %}{{ k }}={{ v }}{% endfor %}|{{ messages[0].get('name', 'anon') }}|
{{- {'b': [1, 2.5, none, true], 'a': 'é<'} | tojson }}|{{ [1] | tojson(indent=2) }}|
{{- strftime_now('%Y') | length }}|{{ bos_token }}{{ eos_token }}"#;
    let tpl = ChatTemplate::new(src, Some("<s>".into()), Some("</s>".into())).unwrap();
    let messages = [
        json!({"role": "user", "content": "  hello  "}),
        json!({"role": "user", "content": "skip me"}),
        json!({"role": "user", "content": " world "}),
        json!({"role": "stop", "content": "x"}),
        json!({"role": "user", "content": "never"}),
    ];
    let out = tpl.render(&messages, None, false).unwrap();
    assert_eq!(
        out,
        "2|WORLD|a+b+c|x=1|anon|{\"b\": [1, 2.5, null, true], \"a\": \"é<\"}|[\n  1\n]|4|<s></s>"
    );
}

#[test]
fn trim_and_lstrip_blocks_match_hf() {
    // HF renders with trim_blocks and lstrip_blocks: block lines leave no blank lines.
    let src = "{% for m in messages %}\n    {% if m.role == 'user' %}\nU:{{ m.content }}\n    {% endif %}\n{% endfor %}";
    let tpl = ChatTemplate::new(src, None, None).unwrap();
    let messages = [
        json!({"role": "user", "content": "a"}),
        json!({"role": "user", "content": "b"}),
    ];
    assert_eq!(tpl.render(&messages, None, false).unwrap(), "U:a\nU:b\n");
}
