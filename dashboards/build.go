package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// dsRef is the templated Prometheus datasource every panel and query uses.
var dsRef = &DatasourceRef{Type: "prometheus", UID: "${" + DatasourceVar + "}"}

// Tag is carried by every gate dashboard; the dashboard links list by it.
const Tag = "gate"

// board lays panels out on Grafana's 24-column grid, left to right and top
// to bottom, and numbers them.
type board struct {
	d      *Dashboard
	nextID int
	x, y   int
	rowH   int
}

func newBoard(uid, title, description string, vars ...*Variable) *board {
	return &board{d: &Dashboard{
		UID:           uid,
		Title:         title,
		Description:   description,
		Tags:          []string{Tag},
		Editable:      false,
		GraphTooltip:  1,
		Refresh:       "30s",
		SchemaVersion: SchemaVersion,
		Time:          TimeRange{From: "now-1h", To: "now"},
		Timezone:      "browser",
		Links: []Link{{
			Title: "gate dashboards", Type: "dashboards", Tags: []string{Tag},
			AsDropdown: true, IncludeVars: true, KeepTime: true,
		}},
		Templating:  Templating{List: append([]*Variable{datasourceVar()}, vars...)},
		Annotations: Annotations{List: []any{}},
		Panels:      []*Panel{},
	}, nextID: 1}
}

func (b *board) id() int {
	id := b.nextID
	b.nextID++
	return id
}

// row starts a new full-width row header.
func (b *board) row(title string) {
	if b.x > 0 {
		b.y += b.rowH
		b.x, b.rowH = 0, 0
	}
	collapsed := false
	b.d.Panels = append(b.d.Panels, &Panel{
		ID: b.id(), Type: KindRow, Title: title, Collapsed: &collapsed,
		GridPos: GridPos{H: 1, W: 24, X: 0, Y: b.y},
	})
	b.y++
}

// add places p with width w and height h, wrapping to a new line when the
// current one is full.
func (b *board) add(w, h int, p *Panel) {
	if b.x+w > 24 {
		b.y += b.rowH
		b.x, b.rowH = 0, 0
	}
	p.ID = b.id()
	p.GridPos = GridPos{H: h, W: w, X: b.x, Y: b.y}
	b.x += w
	b.rowH = max(b.rowH, h)
	b.d.Panels = append(b.d.Panels, p)
}

func (b *board) done() *Dashboard { return b.d }

// datasourceVar is the Prometheus datasource picker.
func datasourceVar() *Variable {
	return &Variable{
		Name: DatasourceVar, Label: "Data source", Type: "datasource",
		Description: "Prometheus datasource that scrapes the gate broker, workers and clients.",
		Query:       "prometheus",
		Refresh:     1,
		Current:     Current{Text: "Prometheus", Value: "prometheus"},
		Options:     []any{},
	}
}

// labelVar is a multi-value query variable over label_values(selector, label).
// allValue ".*" keeps "All" cheap; an empty allValue makes Grafana expand
// "All" to the current options, which is what dependent variables need.
func labelVar(name, label, description, selector, labelName, allValue string) *Variable {
	def := fmt.Sprintf("label_values(%s, %s)", selector, labelName)
	return &Variable{
		Name: name, Label: label, Type: "query", Description: description,
		Datasource: dsRef,
		Query:      VariableQuery{QryType: 1, Query: def, RefID: "PrometheusVariableQueryEditor-VariableQuery"},
		Definition: def,
		Refresh:    2,
		Sort:       1,
		Multi:      true,
		IncludeAll: true,
		AllValue:   allValue,
		Current:    Current{Selected: true, Text: []string{"All"}, Value: []string{"$__all"}},
		Options:    []any{},
	}
}

// q is a range query with a legend.
func q(expr, legend string) *Target {
	return &Target{Datasource: dsRef, Expr: expr, LegendFormat: legend, Format: "time_series", Range: true, EditorMode: "code"}
}

// qx is a range query with exemplars, for latency panels.
func qx(expr, legend string) *Target {
	t := q(expr, legend)
	t.Exemplar = true
	return t
}

func withRefIDs(ts []*Target) []*Target {
	for i, t := range ts {
		t.RefID = string(rune('A' + i))
	}
	return ts
}

func fieldConfig(unit string) *FieldConfig {
	return &FieldConfig{Defaults: FieldDefaults{Unit: unit}, Overrides: []Override{}}
}

// timeseries is a line chart.
func timeseries(title, description, unit string, targets ...*Target) *Panel {
	fc := fieldConfig(unit)
	fc.Defaults.Custom = map[string]any{"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never", "spanNulls": false}
	return &Panel{
		Type: KindTimeSeries, Title: title, Description: description, Datasource: dsRef,
		Targets: withRefIDs(targets), FieldConfig: fc,
		Options: TimeSeriesOptions{
			Legend:  Legend{DisplayMode: "table", Placement: "bottom", ShowLegend: true, Calcs: []string{"mean", "max", "lastNotNull"}},
			Tooltip: Tooltip{Mode: "multi", Sort: "desc"},
		},
	}
}

// latency is a timeseries of p50, p95 and p99 over a _seconds histogram,
// summed by the given labels, with exemplars linking to traces.
func latency(title, description, metric, sel, by string) *Panel {
	var ts []*Target
	for _, qt := range []string{"0.5", "0.95", "0.99"} {
		legend := "p" + qt[2:]
		if qt == "0.5" {
			legend = "p50"
		}
		if by != "" {
			legend += " {{" + by + "}}"
		}
		ts = append(ts, qx(quantile(qt, metric, sel, by), legend))
	}
	return timeseries(title, description, "s", ts...)
}

// quantile is histogram_quantile over rate(metric_bucket[$__rate_interval]).
func quantile(qt, metric, sel, by string) string {
	labels := "le"
	if by != "" {
		labels += ", " + by
	}
	return fmt.Sprintf("histogram_quantile(%s, sum by (%s) (rate(%s_bucket{%s}[$__rate_interval])))", qt, labels, metric, sel)
}

// stat is a single big number.
func stat(title, description, unit string, t *Target, thresholds ...float64) *Panel {
	fc := fieldConfig(unit)
	steps := []Step{{Color: "green"}}
	colors := []string{"orange", "red"}
	for i, v := range thresholds {
		steps = append(steps, Step{Color: colors[min(i, len(colors)-1)], Value: &v})
	}
	fc.Defaults.Thresholds = &Thresholds{Mode: "absolute", Steps: steps}
	fc.Defaults.Color = map[string]any{"mode": "thresholds"}
	return &Panel{
		Type: KindStat, Title: title, Description: description, Datasource: dsRef,
		Targets: withRefIDs([]*Target{t}), FieldConfig: fc,
		Options: StatOptions{
			ReduceOptions: ReduceOptions{Calcs: []string{"lastNotNull"}, Fields: "", Values: false},
			ColorMode:     "value", GraphMode: "area", JustifyMode: "auto", TextMode: "auto", Orientation: "auto",
		},
	}
}

// heatmap draws pre-bucketed histogram series: increase(metric_bucket) by le.
func heatmap(title, description, metric, sel string) *Panel {
	t := q(fmt.Sprintf("sum by (le) (increase(%s_bucket{%s}[$__rate_interval]))", metric, sel), "{{le}}")
	t.Format = "heatmap"
	t.Exemplar = true
	return &Panel{
		Type: KindHeatmap, Title: title, Description: description, Datasource: dsRef,
		Targets: withRefIDs([]*Target{t}), FieldConfig: fieldConfig("s"),
		Options: HeatmapOptions{
			Calculate: false, CellGap: 1,
			Color:        HeatmapColor{Mode: "scheme", Scheme: "Oranges", Scale: "exponential", Steps: 64},
			YAxis:        HeatmapAxis{AxisPlacement: "left", Unit: "s"},
			RowsFrame:    RowsFrame{Layout: "auto"},
			Tooltip:      HeatTooltip{Mode: "single", YHistogram: true, ShowColorScale: false},
			Legend:       HeatLegend{Show: true},
			Exemplars:    HeatExemplar{Color: "rgba(255,0,255,0.7)"},
			CellValues:   CellValues{Unit: "short"},
			ShowValue:    "never",
			FilterValues: FilterValues{Le: 1e-9},
		},
	}
}

// table shows an instant query as a table, hiding the given columns.
func table(title, description string, t *Target, hide ...string) *Panel {
	t.Format, t.Instant, t.Range = "table", true, false
	excl := map[string]bool{}
	for _, h := range hide {
		excl[h] = true
	}
	return &Panel{
		Type: KindTable, Title: title, Description: description, Datasource: dsRef,
		Targets: withRefIDs([]*Target{t}), FieldConfig: fieldConfig("string"),
		Options: TableOptions{ShowHeader: true, CellHeight: "sm"},
		Transformations: []Transformation{{
			ID: "organize", Options: map[string]any{"excludeByName": excl},
		}},
	}
}

// Marshal renders d as the committed JSON: two-space indent, trailing newline,
// no HTML escaping (so PromQL's < > & stay readable).
func Marshal(d *Dashboard) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("dashboards: marshal %s: %w", d.UID, err)
	}
	return buf.Bytes(), nil
}
