module github.com/barrage-dev/barrage/bindings/go/oaitest

go 1.19

require github.com/barrage-dev/barrage/bindings/go v0.0.0

require github.com/sashabaranov/go-openai v1.43.0

replace github.com/barrage-dev/barrage/bindings/go => ../
