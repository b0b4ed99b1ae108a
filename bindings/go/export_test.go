package barrage

// Internal views for the external test package (abi_test.go).

type FieldLayout = fieldLayout
type StructLayout = structLayout

var ABIStructs = abiStructs
var OptionFields = optionFields

var ParseHeaderBlock = parseHeaderBlock
