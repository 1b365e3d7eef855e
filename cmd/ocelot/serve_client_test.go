package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocelot-llm/ocelot/internal/testmodel"
)

// clientDir holds the openai client test (scripts/serve-client).
var clientDir = filepath.Join("..", "..", "scripts", "serve-client")

// TestServeOpenAIClient runs `ocelot serve` and points the official
// openai npm client (scripts/serve-client/client.mjs) and curl at it:
// chat whole and streamed, completions, a stop string, embeddings, JSON
// Schema output that parses, a client cancelling
// mid-stream, 16 clients streaming at once, bad requests answered 4xx. It
// needs node and `npm ci --prefix scripts/serve-client`; without them it
// skips, unless OCELOT_REQUIRE_NODE=1 (CI), which makes it fail.
func TestServeOpenAIClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(clientDir, "node_modules", "openai", "package.json"))
	}
	if err != nil {
		if os.Getenv("OCELOT_REQUIRE_NODE") == "1" {
			t.Fatalf("node or the openai package is missing (npm ci --prefix scripts/serve-client): %v", err)
		}
		t.Skipf("node or the openai package is missing (npm ci --prefix scripts/serve-client): %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	serveContext = ctx
	defer func() { serveContext = context.Background() }()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runServe([]string{"-m", testmodel.Preset(t, "tiny"), "-c", "256", "--port", "0", "--api-key", "sk-test",
			"--alias", "test-model", "--backend", "cpu", "-t", "2", "--parallel", "8", "-q"}, io.Discard, pw)
		pw.Close()
	}()
	url := ""
	sc := bufio.NewScanner(pr)
	for url == "" && sc.Scan() {
		if _, rest, ok := strings.Cut(sc.Text(), " on http://"); ok {
			url = "http://" + strings.Fields(rest)[0]
		}
	}
	go io.Copy(io.Discard, pr)
	if url == "" {
		cancel()
		t.Fatalf("serve did not say where it listens: %v", <-done)
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer ccancel()
	out, err := exec.CommandContext(cctx, node, filepath.Join(clientDir, "client.mjs"), url, "sk-test").CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(line, "FAIL") {
			t.Error(line)
		} else {
			t.Log(line)
		}
	}
	if err != nil {
		t.Errorf("client.mjs: %v", err)
	}
	if curl, err := exec.LookPath("curl"); err == nil {
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{url + "/health"}, `"ok"`},
			{[]string{"-H", "Authorization: Bearer sk-test", url + "/v1/models"}, `"test-model"`},
			{[]string{"-N", "-H", "Authorization: Bearer sk-test", "-H", "Content-Type: application/json",
				"-d", `{"messages":[{"role":"user","content":"Hi"}],"max_tokens":4,"stream":true}`, url + "/v1/chat/completions"}, "data: [DONE]"},
			{[]string{"-H", "Content-Type: application/json", "-d", `{"prompt":"x"}`, url + "/v1/completions"}, `"authentication_error"`},
		} {
			out, err := exec.CommandContext(cctx, curl, append([]string{"-s"}, c.args...)...).CombinedOutput()
			if err != nil || !strings.Contains(string(out), c.want) {
				t.Errorf("curl %v: %v\n%s", c.args, err, out)
			}
		}
	}
	cancel() // as SIGINT: a graceful shutdown
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("serve did not shut down")
	}
}
