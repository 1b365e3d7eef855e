package ocelot

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
)

// availableMemory is the host memory a new allocation can take, in bytes:
// MemAvailable on Linux; 0 where it cannot be told.
func availableMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemAvailable:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// checkKVFits says, before anything is allocated, whether a KV cache of
// nCtx cells for `layers` layers fits in `avail` bytes (0: unknown, no
// check), and if not, how much it needs and what to lower.
func checkKVFits(c model.Config, nCtx, layers int, tk, tv quant.Type, avail int64, where string) error {
	if avail <= 0 || layers == 0 {
		return nil
	}
	need, err := model.KVBytes(c, nCtx, layers, tk, tv)
	if err != nil {
		return err
	}
	if need <= avail {
		return nil
	}
	return fmt.Errorf("ocelot: the KV cache needs %d bytes (%.1f GiB: n_ctx %d × %d layers, K %s, V %s) but %s has %d bytes (%.1f GiB) available; lower -c (n_ctx), or use a smaller KV type (-ctk/-ctv q8_0 or q4_0)%s",
		need, float64(need)/(1<<30), nCtx, layers, tk, tv, where, avail, float64(avail)/(1<<30), map[bool]string{true: ", or offload fewer layers (-ngl)", false: ""}[where != "host memory"])
}
