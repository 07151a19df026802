//! Which subscription a host's model runs on, from the host's provider
//! name and model id (`reference/pi-sub.md` §2.8), with its misreadings
//! fixed:
//!
//! - matching is on whole tokens (split at anything not a letter or digit),
//!   so `o1` inside another name or `aws` inside a word never match;
//! - `xai` (Grok) is not Z.ai, and API-only hosts (Bedrock, Vertex, Azure,
//!   OpenRouter, xAI) are no subscription at all, whatever model they serve;
//! - `chatgpt` and `codex` are Codex; a GPT model served by Copilot is
//!   Copilot, because the host's provider name is read before the model id.

use super::ProviderId;

/// Host provider names that bill by API key, not a subscription.
const API_ONLY: [&str; 6] = ["bedrock", "vertex", "azure", "openrouter", "xai", "grok"];

/// The subscription behind `provider` (the host's provider name, when it
/// has one) and `model`, if any.
pub fn detect(provider: Option<&str>, model: &str) -> Option<ProviderId> {
    let provider_tokens = tokens(provider.unwrap_or(""));
    let model_tokens = tokens(model);
    if provider_tokens.iter().chain(&model_tokens).any(|t| t == "antigravity") {
        return Some(ProviderId::Antigravity);
    }
    if provider_tokens.iter().any(|t| API_ONLY.contains(&t.as_str())) {
        return None;
    }
    let provider_joined = provider.unwrap_or("").to_ascii_lowercase();
    by_provider(&provider_tokens, &provider_joined).or_else(|| by_model(&model_tokens))
}

fn by_provider(tokens: &[String], joined: &str) -> Option<ProviderId> {
    let has = |names: &[&str]| tokens.iter().any(|t| names.contains(&t.as_str()));
    if has(&["anthropic", "claude"]) {
        Some(ProviderId::Anthropic)
    } else if has(&["copilot", "github"]) {
        Some(ProviderId::Copilot)
    } else if has(&["google", "gemini"]) {
        Some(ProviderId::Gemini)
    } else if has(&["openai", "codex", "chatgpt"]) {
        Some(ProviderId::Codex)
    } else if has(&["kiro"]) {
        Some(ProviderId::Kiro)
    } else if has(&["zai", "zhipu", "bigmodel"]) || joined.contains("z.ai") {
        Some(ProviderId::Zai)
    } else {
        None
    }
}

fn by_model(tokens: &[String]) -> Option<ProviderId> {
    let first = tokens.first().map(String::as_str);
    if tokens.iter().any(|t| t == "claude") {
        Some(ProviderId::Anthropic)
    } else if tokens.iter().any(|t| t == "gemini") {
        Some(ProviderId::Gemini)
    } else if tokens
        .iter()
        .any(|t| t.starts_with("gpt") || matches!(t.as_str(), "codex" | "chatgpt" | "o1" | "o3" | "o4"))
    {
        Some(ProviderId::Codex)
    } else if first == Some("glm") {
        Some(ProviderId::Zai)
    } else {
        None
    }
}

fn tokens(text: &str) -> Vec<String> {
    text.to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '.')
        .flat_map(|part| {
            // `z.ai` stays one token; version dots split (`gpt-5.1` → `gpt`, `5`, `1`).
            if part == "z.ai" {
                vec![part.to_owned()]
            } else {
                part.split('.').map(str::to_owned).collect()
            }
        })
        .filter(|token| !token.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_models_map_to_their_subscription() {
        let cases: [(Option<&str>, &str, Option<ProviderId>); 18] = [
            (Some("anthropic"), "claude-sonnet-4-5", Some(ProviderId::Anthropic)),
            (None, "claude-opus-4-1", Some(ProviderId::Anthropic)),
            (Some("openai"), "claude-3-opus", Some(ProviderId::Codex)),
            (Some("openai-codex"), "gpt-5.1-codex", Some(ProviderId::Codex)),
            (None, "chatgpt-4o-latest", Some(ProviderId::Codex)),
            (None, "gpt-5.3-codex-spark", Some(ProviderId::Codex)),
            (None, "o3-mini", Some(ProviderId::Codex)),
            (Some("github-copilot"), "gpt-4.1", Some(ProviderId::Copilot)),
            (Some("GitHub Copilot"), "claude-sonnet-4", Some(ProviderId::Copilot)),
            (Some("google-gemini-cli"), "gemini-2.5-pro", Some(ProviderId::Gemini)),
            (
                Some("google-antigravity"),
                "gemini-3-pro",
                Some(ProviderId::Antigravity),
            ),
            (Some("kiro"), "auto", Some(ProviderId::Kiro)),
            (Some("Z.AI"), "glm-4.6", Some(ProviderId::Zai)),
            (None, "glm-4.5-air", Some(ProviderId::Zai)),
            // Misreadings of the reference, fixed.
            (Some("xai"), "grok-4", None),
            (Some("amazon-bedrock"), "claude-sonnet-4-5", None),
            (None, "mistral-large-2411", None),
            (None, "pro1-o1x", None),
        ];
        for (provider, model, expected) in cases {
            assert_eq!(detect(provider, model), expected, "{provider:?} {model}");
        }
    }
}
