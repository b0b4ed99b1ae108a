module github.com/barrage-dev/barrage/bindings/go

go 1.19
