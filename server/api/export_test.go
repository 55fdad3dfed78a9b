package api

// What the black-box tests compare the pages with.
var HumanSize = humanSize

const (
	StackHeight  = stackHeight
	MinBarHeight = minBarHeight
	FillDownload = fillDownload
	FillPresent  = fillPresent
)
