package ocelot

// The OpenCL backend registers itself with accel, so that --backend auto
// and --backend opencl can use it. Where it cannot be built (Android
// without cgo) the package is an empty stub.
import _ "github.com/ocelot-llm/ocelot/plugin/opencl"
