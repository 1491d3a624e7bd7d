module github.com/ztna/ztna/tools

go 1.26.8

replace github.com/zclconf/go-cty => github.com/nywilken/go-cty v1.13.3
