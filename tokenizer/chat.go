package tokenizer

import (
	"fmt"
	"strings"
)

// Message is one turn of a chat.
type Message struct {
	Role    string // "system", "user" or "assistant" (Llama 3 also knows "ipython" and "tool")
	Content string
}

// Chat formats RenderChat produces, as llama.cpp names them (they are also
// the values --chat-template accepts).
const (
	ChatLlama3         = "llama3"
	ChatLlama2         = "llama2"           // [INST] ... [/INST], no system prompt
	ChatLlama2Sys      = "llama2-sys"       // with <<SYS>> system prompts
	ChatLlama2SysBOS   = "llama2-sys-bos"   // and <s> before each later [INST]
	ChatLlama2SysStrip = "llama2-sys-strip" // and messages trimmed of spaces
)

var supportedChats = map[string]bool{
	ChatLlama3: true, ChatLlama2: true, ChatLlama2Sys: true, ChatLlama2SysBOS: true, ChatLlama2SysStrip: true,
}

// otherChats are the formats llama.cpp knows by name that RenderChat does
// not render.
var otherChats = map[string]bool{
	"chatml": true, "mistral-v1": true, "mistral-v3": true, "mistral-v3-tekken": true,
	"mistral-v7": true, "mistral-v7-tekken": true, "phi3": true, "phi4": true, "falcon3": true,
	"zephyr": true, "monarch": true, "gemma": true, "orion": true, "openchat": true, "vicuna": true,
	"vicuna-orca": true, "deepseek": true, "deepseek2": true, "deepseek3": true, "command-r": true,
	"chatglm3": true, "chatglm4": true, "glmedge": true, "minicpm": true, "exaone3": true,
	"exaone4": true, "rwkv-world": true, "granite": true, "gigachat": true, "megrez": true,
	"yandex": true, "bailing": true, "llama4": true, "smolvlm": true, "hunyuan-moe": true,
	"hunyuan-dense": true, "kimi-k2": true,
}

const chatOverrideHint = "pass --chat-template llama3 (Llama 3.x) or --chat-template llama2 (Llama 2) to choose one"

// DetectChatFormat names the chat format of a template: either one of the
// format names (ChatLlama3, ChatLlama2, ...) or the text of a Jinja chat
// template (tokenizer.chat_template), recognised by the same clues and in
// the same order as llama.cpp's llm_chat_detect_template. A template of
// another family, or none at all, is an error that names the
// --chat-template override.
func DetectChatFormat(template string) (string, error) {
	if supportedChats[template] {
		return template, nil
	}
	if otherChats[template] {
		return "", fmt.Errorf("tokenizer: chat format %q is not supported; %s", template, chatOverrideHint)
	}
	if strings.TrimSpace(template) == "" {
		return "", fmt.Errorf("tokenizer: the model has no chat template; %s", chatOverrideHint)
	}
	has := func(s string) bool { return strings.Contains(template, s) }
	other := ""
	switch {
	case has("<|im_start|>"):
		other = "chatml"
	case strings.HasPrefix(template, "mistral") || has("[INST]"):
		switch {
		case has("[SYSTEM_PROMPT]"):
			other = "mistral-v7"
		case has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]"):
			other = "mistral"
		case has("content.strip()"):
			return ChatLlama2SysStrip, nil
		case has("bos_token + '[INST]"):
			return ChatLlama2SysBOS, nil
		case has("<<SYS>>"):
			return ChatLlama2Sys, nil
		default:
			return ChatLlama2, nil
		}
	case has("<|assistant|>") && has("<|end|>"):
		other = "phi3"
	case has("[gMASK]<sop>"):
		other = "chatglm4"
	case has("<|assistant|>") && has("<|user|>"):
		other = "falcon3"
	case has("<|{{ item['role'] }}|>") && has("<|begin_of_image|>"):
		other = "glmedge"
	case has("<|user|>") && has("<|endoftext|>"):
		other = "zephyr"
	case has("bos_token + message['role']"):
		other = "monarch"
	case has("<start_of_turn>"):
		other = "gemma"
	case has(`'\n\nAssistant: ' + eos_token`):
		other = "orion"
	case has("GPT4 Correct "):
		other = "openchat"
	case has("USER: ") && has("ASSISTANT: "):
		other = "vicuna"
	case has("### Instruction:") && has("<|EOT|>"):
		other = "deepseek"
	case has("<|START_OF_TURN_TOKEN|>") && has("<|USER_TOKEN|>"):
		other = "command-r"
	case has("<|start_header_id|>") && has("<|end_header_id|>"):
		return ChatLlama3, nil
	}
	if other != "" {
		return "", fmt.Errorf("tokenizer: the chat template looks like %s, which is not supported; %s", other, chatOverrideHint)
	}
	return "", fmt.Errorf("tokenizer: chat template not recognised as Llama 3.x or Llama 2; %s", chatOverrideHint)
}

// RenderChat renders a conversation in the chat format of template (a
// format name or a Jinja template's text, see DetectChatFormat), byte for
// byte as llama.cpp's llm_chat_apply_template does. With
// addGenerationPrompt, Llama 3 ends with the header of the assistant's
// turn; Llama 2 has no such header (its prompt ends with [/INST]).
//
// The result holds special tokens as text (<|eot_id|>, </s>): encode it
// with parseSpecial, and with addSpecial for the leading BOS, which the
// text does not include.
func RenderChat(template string, msgs []Message, addGenerationPrompt bool) (string, error) {
	format, err := DetectChatFormat(template)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if format == ChatLlama3 {
		for _, m := range msgs {
			b.WriteString("<|start_header_id|>")
			b.WriteString(m.Role)
			b.WriteString("<|end_header_id|>\n\n")
			b.WriteString(trimSpaceC(m.Content))
			b.WriteString("<|eot_id|>")
		}
		if addGenerationPrompt {
			b.WriteString("<|start_header_id|>assistant<|end_header_id|>\n\n")
		}
		return b.String(), nil
	}

	system := format != ChatLlama2
	bosInside := format == ChatLlama2SysBOS
	strip := format == ChatLlama2SysStrip
	inTurn := true // the first [INST] follows the BOS the tokenizer adds
	b.WriteString("[INST] ")
	for _, m := range msgs {
		content := m.Content
		if strip {
			content = trimSpaceC(content)
		}
		if !inTurn {
			inTurn = true
			if bosInside {
				b.WriteString("<s>")
			}
			b.WriteString("[INST] ")
		}
		switch m.Role {
		case "system":
			if system {
				b.WriteString("<<SYS>>\n" + content + "\n<</SYS>>\n\n")
			} else {
				// No system prompt in this format: the text still goes
				// into the first message, as llama.cpp does it.
				b.WriteString(content + "\n")
			}
		case "user":
			b.WriteString(content + " [/INST]")
		default:
			b.WriteString(content + "</s>")
			inTurn = false
		}
	}
	return b.String(), nil
}

// RenderChat renders msgs with the model's chat template, or with
// override (a format name or template text) when it is not empty.
func (t *Tokenizer) RenderChat(override string, msgs []Message, addGenerationPrompt bool) (string, error) {
	tmpl := t.chatTemplate
	if override != "" {
		tmpl = override
	}
	return RenderChat(tmpl, msgs, addGenerationPrompt)
}

// trimSpaceC trims the ASCII spaces C's isspace knows (space, \t, \n, \v,
// \f, \r) from both ends of s, as llama.cpp's chat code does.
func trimSpaceC(s string) string {
	isSpace := func(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }
	i, j := 0, len(s)
	for i < j && isSpace(s[i]) {
		i++
	}
	for j > i && isSpace(s[j-1]) {
		j--
	}
	return s[i:j]
}
