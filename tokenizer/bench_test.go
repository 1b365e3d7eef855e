package tokenizer

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// Snippets the benchmark text is built from: English prose, Korean and Go
// code, as a chat or code assistant sees them.
var (
	proseSnippets = []string{
		"The quick brown fox jumps over the lazy dog, and the dog doesn't mind at all.",
		"In 1969, Apollo 11 landed on the Moon; Neil Armstrong's first words were broadcast to 600 million people.",
		"Tokenizers split text into pieces that a language model can look up in its embedding table.",
		"\"Well,\" she said, \"I'll have to think about it.\" Then she left the room without another word.",
		"It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness...",
		"Prices rose 3.2% in March (year over year), the largest increase since 2022 — economists weren't surprised.",
		"You're right: we've tested it twice, and it's still failing on Windows 11 with error code 0x80070005.",
	}
	koreanSnippets = []string{
		"안녕하세요, 만나서 반갑습니다.",
		"오늘 날씨가 정말 좋네요. 산책하러 갈까요?",
		"대한민국의 수도는 서울이며, 인구는 약 950만 명입니다.",
		"인공지능 모델은 텍스트를 토큰으로 나누어 처리합니다.",
		"이 프로그램은 Go 언어로 작성되었고 빠르게 동작합니다.",
		"한국어 문장에는 띄어쓰기와 조사가 많이 사용됩니다.",
	}
	codeSnippets = []string{
		"func (t *Tokenizer) Encode(text string, addSpecial, parseSpecial bool) ([]int32, error) {\n\treturn t.AppendEncode(nil, text, addSpecial, parseSpecial)\n}\n",
		"for i := 0; i < len(xs); i++ {\n\tif xs[i] > best {\n\t\tbest = xs[i]\n\t}\n}\n",
		"if err != nil {\n\t\treturn nil, fmt.Errorf(\"open %s: %w\", path, err)\n\t}\n",
		"type Matrix struct {\n\tRows, Cols int\n\tData       []float32 // row-major\n}\n",
		"// Sum returns the sum of xs.\nfunc Sum(xs []float64) (s float64) {\n\tfor _, x := range xs {\n\t\ts += x\n\t}\n\treturn s\n}\n",
		"m := map[string]int{\"alpha\": 1, \"beta\": 22, \"gamma\": 333}\nfmt.Println(len(m), m[\"beta\"]*2)\n",
	}
)

// Word lists for generated sentences, so that the text has many distinct
// words (as real text does) rather than a few repeated snippets.
var (
	englishWords = strings.Fields(`the of and to a in is it you that he was for on are with as I his they be
at one have this from or had by hot word but what some we can out other were all there when up use your
how said an each she which do their time if will way about many then them write would like so these her
long make thing see him two has look more day could go come did number sound no most people my over know
water than call first who may down side been now find any new work part take get place made live where
after back little only round man year came show every good me give our under name very through just form
sentence great think say help low line differ turn cause much mean before move right boy old too same tell
does set three want air well also play small end put home read hand port large spell add even land here
must big high such follow act why ask men change went light kind off need house picture try us again animal
point mother world near build self earth father head stand own page should country found answer school grow
study still learn plant cover food sun four between state keep eye never last let thought city tree cross
farm hard start might story saw far sea draw left late run don't while press close night real life few north
tokenizer model inference quantization kernel throughput latency benchmark embedding attention transformer
gradient tensor matrix vector cache memory device accelerator compiler runtime scheduler allocator`)
	koreanWords = strings.Fields(`나는 너는 우리는 그들은 학생 선생님 학교 회사 집 사람 친구 가족 시간 오늘 내일 어제
사랑 생각 문제 질문 대답 세계 나라 도시 서울 부산 음식 김치 밥 물 커피 책 영화 음악 노래 컴퓨터 프로그램
인공지능 모델 데이터 토큰 언어 한국어 영어 문장 단어 이야기 경제 정치 사회 문화 역사 과학 기술 연구 개발
가다 오다 먹다 마시다 보다 듣다 읽다 쓰다 만들다 배우다 가르치다 일하다 놀다 자다 좋아하다 싫어하다
크다 작다 많다 적다 좋다 나쁘다 빠르다 느리다 새롭다 어렵다 쉽다 아름답다 정말 아주 매우 조금 다시 함께`)
	koreanEndings = []string{"은", "는", "이", "가", "을", "를", "에", "에서", "와", "과", "도", "의", "으로", "로", "만", "까지", "부터", "요", "습니다", "했다", "합니다", "해요", "입니다", "였다"}
	goTypes       = []string{"int", "int32", "float32", "string", "[]byte", "error", "bool", "*Tokenizer", "map[string]int", "[]float32"}
)

var benchText = sync.OnceValue(func() string { return mixedText(1<<20, 1) })

// mixedText returns about n bytes of English prose, Korean and Go code,
// built from the snippets and word lists above: always the same for the
// same seed (the llama.cpp digests depend on it).
func mixedText(n int, seed uint64) string {
	rng := splitmix64(seed)
	pick := func(xs []string) string { return xs[rng.intn(len(xs))] }
	var b strings.Builder
	englishSentence := func() {
		k := 5 + rng.intn(15)
		for i := 0; i < k; i++ {
			w := pick(englishWords)
			if i == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			} else {
				b.WriteByte(' ')
			}
			b.WriteString(w)
			switch rng.intn(20) {
			case 0:
				b.WriteByte(',')
			case 1:
				fmt.Fprintf(&b, " %d", rng.intn(100000))
			case 2:
				b.WriteString("'s")
			}
		}
		b.WriteString(pick([]string{".", ".", ".", "?", "!", ":"}))
	}
	identifier := func() string {
		w := pick(englishWords[:len(englishWords)-40])
		if rng.intn(2) == 0 {
			w2 := pick(englishWords)
			w += strings.ToUpper(w2[:1]) + w2[1:]
		}
		return strings.ReplaceAll(w, "'", "")
	}
	for b.Len() < n {
		switch k := rng.intn(20); {
		case k < 2:
			b.WriteString(pick(proseSnippets))
			b.WriteString("\n\n")
		case k < 9:
			for i := 0; i < 2+rng.intn(5); i++ {
				englishSentence()
				b.WriteByte(' ')
			}
			b.WriteString("\n\n")
		case k < 10:
			b.WriteString(pick(koreanSnippets))
			b.WriteString("\n")
		case k < 14:
			for i := 0; i < 3+rng.intn(10); i++ {
				b.WriteString(pick(koreanWords))
				if rng.intn(2) == 0 {
					b.WriteString(pick(koreanEndings))
				}
				b.WriteString(pick([]string{" ", " ", " ", " ", ", ", ". "}))
			}
			b.WriteString("\n")
		case k < 15:
			b.WriteString(pick(codeSnippets))
			b.WriteByte('\n')
		default:
			name, arg := identifier(), identifier()
			fmt.Fprintf(&b, "// %s %s\nfunc %s(%s %s) (%s, error) {\n", name, "returns the "+pick(englishWords)+" of "+arg+".", name, arg, pick(goTypes), pick(goTypes))
			for i := 0; i < 1+rng.intn(4); i++ {
				fmt.Fprintf(&b, "\t%s := %s(%s, %d)\n", identifier(), identifier(), arg, rng.intn(4096))
			}
			fmt.Fprintf(&b, "\tif %s == nil {\n\t\treturn nil, fmt.Errorf(\"%s: %%w\", err)\n\t}\n\treturn %s, nil\n}\n\n", arg, name, identifier())
		}
	}
	return b.String()
}

// BenchmarkEncodeLlama3 measures Llama 3 BPE throughput on about 1 MB of
// mixed English prose, Korean and Go code (MB/s from b.SetBytes).
func BenchmarkEncodeLlama3(b *testing.B) {
	tok := llama3(b)
	text := benchText()
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	var n int
	for b.Loop() {
		ids, err := tok.Encode(text, false, false)
		if err != nil {
			b.Fatal(err)
		}
		n = len(ids)
	}
	b.ReportMetric(float64(len(text))/float64(n), "bytes/token")
}

// BenchmarkEncodeLlama3Cold is BenchmarkEncodeLlama3 with the per-word
// cache emptied before each run, so that every distinct word of the text
// is merged once per run.
func BenchmarkEncodeLlama3Cold(b *testing.B) {
	tok := llama3(b)
	text := benchText()
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		tok.work = sync.Pool{}
		if _, err := tok.Encode(text, false, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeLlama2 measures Llama 2 SPM throughput on the same text.
func BenchmarkEncodeLlama2(b *testing.B) {
	tok := llama2(b)
	text := benchText()
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tok.Encode(text, false, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeLlama3 measures decoding the benchmark text's ids.
func BenchmarkDecodeLlama3(b *testing.B) {
	tok := llama3(b)
	text := benchText()
	ids, err := tok.Encode(text, false, false)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tok.Decode(ids); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadLlama3 measures building the Llama 3 tokenizer from its
// GGUF file (128256 tokens, 280147 merges).
func BenchmarkLoadLlama3(b *testing.B) {
	dir := llama3Dir(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}
