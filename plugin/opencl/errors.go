package opencl

import (
	"errors"
	"fmt"
)

// Error is a failed OpenCL call: the function, what it was working on
// (a kernel, a tensor; may be empty) and the status it returned.
type Error struct {
	Call   string // the OpenCL function, e.g. "clEnqueueNDRangeKernel"
	Object string // what it worked on, e.g. "mul_mv_q4_0"
	Code   int32  // the CL status, e.g. -5
}

func (e *Error) Error() string {
	if e.Object != "" {
		return fmt.Sprintf("opencl: %s(%s): %s (%d)", e.Call, e.Object, codeName(e.Code), e.Code)
	}
	return fmt.Sprintf("opencl: %s: %s (%d)", e.Call, codeName(e.Code), e.Code)
}

// ValueError is a number an OpenCL query returned that ocelot refuses to
// use: an absurd count, length or size (4294967295 devices, a 1 TiB device
// name, a work-group size of 0). Such a driver is not used: the error
// makes the backend unavailable, and --backend auto runs on the CPU.
type ValueError struct {
	Call  string // the OpenCL function, e.g. "clGetDeviceIDs"
	Param string // the info queried, e.g. "CL_DEVICE_NAME"; empty for a count
	Value uint64 // the number the driver reported
	msg   string
}

func (e *ValueError) Error() string { return e.msg }

// badValue makes a *ValueError; the text is "opencl: call(param) reports "
// followed by the formatted detail, which names the value and the bound.
func badValue(call string, param uint32, v uint64, format string, args ...any) error {
	e := &ValueError{Call: call, Param: paramName(param), Value: v}
	head := call
	if e.Param != "" {
		head += "(" + e.Param + ")"
	}
	e.msg = "opencl: " + head + " reports " + fmt.Sprintf(format, args...)
	return e
}

// OutOfMemory says whether the status means the device (or the host on its
// behalf) ran out of memory.
func (e *Error) OutOfMemory() bool {
	switch e.Code {
	case clMemObjectAllocationFailure, clOutOfResources, clOutOfHostMemory, clInvalidBufferSize:
		return true
	}
	return false
}

// IsOutOfMemory reports whether err is, or wraps, an OpenCL out-of-memory
// status.
func IsOutOfMemory(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.OutOfMemory()
}

// OpenCL status codes used by name in this package.
const (
	clSuccess                    = 0
	clDeviceNotFound             = -1
	clBuildProgramFailure        = -11
	clMemObjectAllocationFailure = -4
	clOutOfResources             = -5
	clOutOfHostMemory            = -6
	clInvalidBufferSize          = -61
	clInvalidValue               = -30
	clInvalidBinary              = -42
)

var codeNames = map[int32]string{
	0:     "CL_SUCCESS",
	-1:    "CL_DEVICE_NOT_FOUND",
	-2:    "CL_DEVICE_NOT_AVAILABLE",
	-3:    "CL_COMPILER_NOT_AVAILABLE",
	-4:    "CL_MEM_OBJECT_ALLOCATION_FAILURE",
	-5:    "CL_OUT_OF_RESOURCES",
	-6:    "CL_OUT_OF_HOST_MEMORY",
	-7:    "CL_PROFILING_INFO_NOT_AVAILABLE",
	-8:    "CL_MEM_COPY_OVERLAP",
	-9:    "CL_IMAGE_FORMAT_MISMATCH",
	-10:   "CL_IMAGE_FORMAT_NOT_SUPPORTED",
	-11:   "CL_BUILD_PROGRAM_FAILURE",
	-12:   "CL_MAP_FAILURE",
	-13:   "CL_MISALIGNED_SUB_BUFFER_OFFSET",
	-14:   "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST",
	-15:   "CL_COMPILE_PROGRAM_FAILURE",
	-16:   "CL_LINKER_NOT_AVAILABLE",
	-17:   "CL_LINK_PROGRAM_FAILURE",
	-18:   "CL_DEVICE_PARTITION_FAILED",
	-19:   "CL_KERNEL_ARG_INFO_NOT_AVAILABLE",
	-30:   "CL_INVALID_VALUE",
	-31:   "CL_INVALID_DEVICE_TYPE",
	-32:   "CL_INVALID_PLATFORM",
	-33:   "CL_INVALID_DEVICE",
	-34:   "CL_INVALID_CONTEXT",
	-35:   "CL_INVALID_QUEUE_PROPERTIES",
	-36:   "CL_INVALID_COMMAND_QUEUE",
	-37:   "CL_INVALID_HOST_PTR",
	-38:   "CL_INVALID_MEM_OBJECT",
	-39:   "CL_INVALID_IMAGE_FORMAT_DESCRIPTOR",
	-40:   "CL_INVALID_IMAGE_SIZE",
	-41:   "CL_INVALID_SAMPLER",
	-42:   "CL_INVALID_BINARY",
	-43:   "CL_INVALID_BUILD_OPTIONS",
	-44:   "CL_INVALID_PROGRAM",
	-45:   "CL_INVALID_PROGRAM_EXECUTABLE",
	-46:   "CL_INVALID_KERNEL_NAME",
	-47:   "CL_INVALID_KERNEL_DEFINITION",
	-48:   "CL_INVALID_KERNEL",
	-49:   "CL_INVALID_ARG_INDEX",
	-50:   "CL_INVALID_ARG_VALUE",
	-51:   "CL_INVALID_ARG_SIZE",
	-52:   "CL_INVALID_KERNEL_ARGS",
	-53:   "CL_INVALID_WORK_DIMENSION",
	-54:   "CL_INVALID_WORK_GROUP_SIZE",
	-55:   "CL_INVALID_WORK_ITEM_SIZE",
	-56:   "CL_INVALID_GLOBAL_OFFSET",
	-57:   "CL_INVALID_EVENT_WAIT_LIST",
	-58:   "CL_INVALID_EVENT",
	-59:   "CL_INVALID_OPERATION",
	-60:   "CL_INVALID_GL_OBJECT",
	-61:   "CL_INVALID_BUFFER_SIZE",
	-62:   "CL_INVALID_MIP_LEVEL",
	-63:   "CL_INVALID_GLOBAL_WORK_SIZE",
	-64:   "CL_INVALID_PROPERTY",
	-65:   "CL_INVALID_IMAGE_DESCRIPTOR",
	-66:   "CL_INVALID_COMPILER_OPTIONS",
	-67:   "CL_INVALID_LINKER_OPTIONS",
	-68:   "CL_INVALID_DEVICE_PARTITION_COUNT",
	-69:   "CL_INVALID_PIPE_SIZE",
	-70:   "CL_INVALID_DEVICE_QUEUE",
	-71:   "CL_INVALID_SPEC_ID",
	-72:   "CL_MAX_SIZE_RESTRICTION_EXCEEDED",
	-1001: "CL_PLATFORM_NOT_FOUND_KHR",
	// NVIDIA's driver reports a kernel's illegal memory access this way
	// (and the context is unusable afterwards).
	-9999: "NVIDIA_ILLEGAL_READ_OR_WRITE",
}

// codeName is the CL_* name of a status, or "CL_UNKNOWN_ERROR".
func codeName(code int32) string {
	if n, ok := codeNames[code]; ok {
		return n
	}
	return "CL_UNKNOWN_ERROR"
}
