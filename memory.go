package ocelot

import (
	"fmt"

	"github.com/ocelot-llm/ocelot/model"
	"github.com/ocelot-llm/ocelot/quant"
)

// checkKVFits says, before anything is allocated, whether a KV cache of
// nCtx cells for `layers` layers fits in `avail` bytes (0: unknown, no
// check), and if not, how much it needs and what to lower.
func checkKVFits(c model.Config, nCtx, layers int, tk, tv quant.Type, avail int64, where string) error {
	need, err := model.KVBytes(c, nCtx, layers, tk, tv)
	if err != nil {
		return fmt.Errorf("ocelot: %w; lower -c (n_ctx)", err)
	}
	if avail <= 0 || layers == 0 {
		return nil
	}
	if need <= avail {
		return nil
	}
	return fmt.Errorf("ocelot: the KV cache needs %d bytes (%.1f GiB: n_ctx %d × %d layers, K %s, V %s) but %s has %d bytes (%.1f GiB) available; lower -c (n_ctx), or use a smaller KV type (-ctk/-ctv q8_0 or q4_0)%s",
		need, float64(need)/(1<<30), nCtx, layers, tk, tv, where, avail, float64(avail)/(1<<30), map[bool]string{true: ", or offload fewer layers (-ngl)", false: ""}[where != "host memory"])
}
