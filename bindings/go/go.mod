module barrage.dev/barrage

go 1.19
