package tokenizer

import (
	"slices"
	"strings"
	"testing"
)

// chatConversation is the conversation llama.cpp's test-chat-template uses;
// the expected renderings below are the ones that test expects of
// llm_chat_apply_template.
var chatConversation = []Message{
	{"system", "You are a helpful assistant"},
	{"user", "Hello"},
	{"assistant", "Hi there"},
	{"user", "Who are you"},
	{"assistant", "   I am an assistant   "},
	{"user", "Another question"},
}

func TestRenderChat(t *testing.T) {
	cases := []struct {
		name, template, format, want string
	}{
		{
			name:     "llama3 template",
			template: "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}",
			format:   ChatLlama3,
			want:     "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
		},
		{
			name:     "llama3 built-in",
			template: Llama3ChatTemplate,
			format:   ChatLlama3,
			want:     "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
		},
		{
			name:     "llama2 without system prompt",
			template: "{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}",
			format:   ChatLlama2,
			want:     "[INST] You are a helpful assistant\nHello [/INST]Hi there</s>[INST] Who are you [/INST]   I am an assistant   </s>[INST] Another question [/INST]",
		},
		{
			name:     "llama2 with system prompt",
			template: "{% if message['role'] == 'system' %}{{ '<<SYS>>\\n' + message['content'] + '\\n<</SYS>>\\n\\n' }}{% endif %}{{ '[INST] ' + message['content'] + ' [/INST]' }}",
			format:   ChatLlama2Sys,
			want:     "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s>[INST] Who are you [/INST]   I am an assistant   </s>[INST] Another question [/INST]",
		},
		{
			name:     "llama2 with BOS in history",
			template: "{{ '[INST] <<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' }}{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}",
			format:   ChatLlama2SysBOS,
			want:     "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s><s>[INST] Who are you [/INST]   I am an assistant   </s><s>[INST] Another question [/INST]",
		},
		{
			name:     "llama2 official (strips messages)",
			template: "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}",
			format:   ChatLlama2SysStrip,
			want:     "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s>[INST] Who are you [/INST]I am an assistant</s>[INST] Another question [/INST]",
		},
		{name: "name llama3", template: "llama3", format: ChatLlama3},
		{name: "name llama2", template: "llama2", format: ChatLlama2},
		{name: "name llama2-sys-bos", template: "llama2-sys-bos", format: ChatLlama2SysBOS},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			format, err := DetectChatFormat(c.template)
			if err != nil || format != c.format {
				t.Fatalf("DetectChatFormat = %q, %v; want %q", format, err, c.format)
			}
			if c.want == "" {
				return
			}
			got, err := RenderChat(c.template, chatConversation, true)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("rendered\n%q\nwant\n%q", got, c.want)
			}
		})
	}
}

func TestRenderChatGenerationPrompt(t *testing.T) {
	msgs := []Message{{"user", "  Hi!\n"}}
	got, _ := RenderChat(ChatLlama3, msgs, false)
	if want := "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"; got != want {
		t.Errorf("without generation prompt: %q, want %q", got, want)
	}
	got, _ = RenderChat(ChatLlama3, msgs, true)
	if !strings.HasSuffix(got, "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n") {
		t.Errorf("with generation prompt: %q", got)
	}
	// Llama 2 has no assistant header: the prompt ends with [/INST].
	a, _ := RenderChat(ChatLlama2, msgs, true)
	b, _ := RenderChat(ChatLlama2, msgs, false)
	if a != b || a != "[INST]   Hi!\n [/INST]" {
		t.Errorf("llama2: %q and %q", a, b)
	}
}

func TestRenderChatErrors(t *testing.T) {
	for _, tmpl := range []string{
		"",
		"{{ messages }}",
		"{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>{% endfor %}",
		"mistral [AVAILABLE_TOOLS] [INST]",
		"<start_of_turn>user",
		"chatml",
	} {
		_, err := RenderChat(tmpl, chatConversation, true)
		if err == nil || !strings.Contains(err.Error(), "--chat-template") {
			t.Errorf("template %q: err %v, want one naming --chat-template", tmpl, err)
		}
	}
}

// TestChatEncode checks the rendered prompt's tokens: BOS from the
// tokenizer, the special tokens parsed.
func TestChatEncode(t *testing.T) {
	l3 := llama3(t)
	prompt, err := l3.RenderChat("llama3", []Message{{"user", "Hi!"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := l3.Encode(prompt, true, true)
	if err != nil {
		t.Fatal(err)
	}
	// <|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n
	want := []int32{128000, 128006, 882, 128007, 271, 13347, 0, 128009, 128006, 78191, 128007, 271}
	if !slices.Equal(ids, want) {
		t.Errorf("ids %v, want %v", ids, want)
	}
	if _, err := l3.RenderChat("", nil, true); err == nil || !strings.Contains(err.Error(), "--chat-template") {
		t.Errorf("no template: err %v", err)
	}
}
