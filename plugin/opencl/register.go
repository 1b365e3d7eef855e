package opencl

import "github.com/ocelot-llm/ocelot/accel"

// The backend registers itself as the "opencl" accelerator: importing the
// package makes --backend opencl (and auto) able to pick it.
func init() {
	accel.Register(accel.Factory{Name: "opencl", Open: func(c accel.Config) (accel.Backend, error) {
		b, err := Open(Options{Device: c.Device, Profile: c.Profile, Logf: c.Logf, GPUOnly: c.Auto})
		if err != nil {
			return nil, err
		}
		return b, nil
	}})
}
