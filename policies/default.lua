-- default.lua: grants nothing. Every method answers -32001 EACCES until a policy grants it.
return {
  methods = {},
}
