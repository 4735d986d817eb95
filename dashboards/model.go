package dashboards

// This file is a small typed model of the parts of the Grafana dashboard JSON
// (schemaVersion 39) that the gate dashboards use. Grafana's own Go SDK is not
// available here, and we need only a handful of panel kinds, so each type
// carries exactly the fields we emit. Field order is the JSON order, which
// keeps the committed files stable and diffable.

// SchemaVersion is the Grafana dashboard schema version the model targets.
const SchemaVersion = 39

// DatasourceVar is the name of the templated Prometheus datasource variable.
// Every panel and query refers to it as ${datasource}.
const DatasourceVar = "datasource"

// Dashboard is one Grafana dashboard.
type Dashboard struct {
	UID           string      `json:"uid"`
	Title         string      `json:"title"`
	Description   string      `json:"description"`
	Tags          []string    `json:"tags"`
	Editable      bool        `json:"editable"`
	GraphTooltip  int         `json:"graphTooltip"` // 1 = shared crosshair
	Refresh       string      `json:"refresh"`
	SchemaVersion int         `json:"schemaVersion"`
	Time          TimeRange   `json:"time"`
	Timezone      string      `json:"timezone"`
	Links         []Link      `json:"links"`
	Templating    Templating  `json:"templating"`
	Annotations   Annotations `json:"annotations"`
	Panels        []*Panel    `json:"panels"`
}

// TimeRange is the dashboard's default time range.
type TimeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Link is a dashboard link; with Type "dashboards" and Tags it lists every
// dashboard carrying those tags.
type Link struct {
	Title       string   `json:"title"`
	Type        string   `json:"type"`
	Tags        []string `json:"tags"`
	AsDropdown  bool     `json:"asDropdown"`
	IncludeVars bool     `json:"includeVars"`
	KeepTime    bool     `json:"keepTime"`
}

// Annotations holds the dashboard annotation list (kept empty but present,
// as Grafana writes it).
type Annotations struct {
	List []any `json:"list"`
}

// Templating holds the dashboard variables, in display order.
type Templating struct {
	List []*Variable `json:"list"`
}

// Variable is a dashboard template variable: either the datasource picker
// (Type "datasource") or a Prometheus label_values query (Type "query").
type Variable struct {
	Name        string         `json:"name"`
	Label       string         `json:"label"`
	Type        string         `json:"type"`
	Description string         `json:"description"`
	Datasource  *DatasourceRef `json:"datasource,omitempty"`
	Query       any            `json:"query"`
	Definition  string         `json:"definition,omitempty"`
	Regex       string         `json:"regex"`
	Refresh     int            `json:"refresh"` // 1 on load, 2 on time range change
	Sort        int            `json:"sort"`
	Multi       bool           `json:"multi"`
	IncludeAll  bool           `json:"includeAll"`
	AllValue    string         `json:"allValue,omitempty"`
	Current     Current        `json:"current"`
	Options     []any          `json:"options"`
	Hide        int            `json:"hide"`
}

// VariableQuery is the structured query of a Prometheus query variable.
type VariableQuery struct {
	QryType int    `json:"qryType"` // 1 = label values
	Query   string `json:"query"`
	RefID   string `json:"refId"`
}

// Current is a variable's default selection.
type Current struct {
	Selected bool `json:"selected"`
	Text     any  `json:"text"`
	Value    any  `json:"value"`
}

// DatasourceRef points at a datasource by type and uid (uid may be a variable).
type DatasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// GridPos places a panel on the 24-column grid.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// Panel kinds used by the dashboards.
const (
	KindRow        = "row"
	KindTimeSeries = "timeseries"
	KindStat       = "stat"
	KindHeatmap    = "heatmap"
	KindTable      = "table"
	KindBarGauge   = "bargauge"
)

// Panel is one dashboard panel. Rows use only ID, Type, Title, GridPos,
// Collapsed and Panels.
type Panel struct {
	ID              int              `json:"id"`
	Type            string           `json:"type"`
	Title           string           `json:"title"`
	Description     string           `json:"description,omitempty"`
	GridPos         GridPos          `json:"gridPos"`
	Collapsed       *bool            `json:"collapsed,omitempty"`
	Panels          []*Panel         `json:"panels,omitempty"`
	Datasource      *DatasourceRef   `json:"datasource,omitempty"`
	Interval        string           `json:"interval,omitempty"`
	Targets         []*Target        `json:"targets,omitempty"`
	FieldConfig     *FieldConfig     `json:"fieldConfig,omitempty"`
	Options         any              `json:"options,omitempty"`
	Transformations []Transformation `json:"transformations,omitempty"`
}

// Target is one Prometheus query of a panel.
type Target struct {
	RefID        string         `json:"refId"`
	Datasource   *DatasourceRef `json:"datasource"`
	Expr         string         `json:"expr"`
	LegendFormat string         `json:"legendFormat"`
	Format       string         `json:"format"` // time_series, heatmap or table
	Instant      bool           `json:"instant"`
	Range        bool           `json:"range"`
	Exemplar     bool           `json:"exemplar"`
	EditorMode   string         `json:"editorMode"`
}

// FieldConfig carries the unit and display defaults of a panel's fields.
type FieldConfig struct {
	Defaults  FieldDefaults `json:"defaults"`
	Overrides []Override    `json:"overrides"`
}

// FieldDefaults are the per-field defaults; Unit is a Grafana unit id
// ("s", "bytes", "reqps", "percentunit", "short", "Bps", ...).
type FieldDefaults struct {
	Unit       string         `json:"unit"`
	Min        *float64       `json:"min,omitempty"`
	Max        *float64       `json:"max,omitempty"`
	Decimals   *int           `json:"decimals,omitempty"`
	Color      map[string]any `json:"color,omitempty"`
	Thresholds *Thresholds    `json:"thresholds,omitempty"`
	Custom     map[string]any `json:"custom,omitempty"`
}

// Thresholds colour a value by steps; the first step's Value is nil (base).
type Thresholds struct {
	Mode  string `json:"mode"`
	Steps []Step `json:"steps"`
}

// Step is one threshold step.
type Step struct {
	Color string   `json:"color"`
	Value *float64 `json:"value"`
}

// Override changes field properties for matching fields.
type Override struct {
	Matcher    Matcher    `json:"matcher"`
	Properties []Property `json:"properties"`
}

// Matcher selects fields for an Override.
type Matcher struct {
	ID      string `json:"id"`
	Options any    `json:"options"`
}

// Property is one overridden field property.
type Property struct {
	ID    string `json:"id"`
	Value any    `json:"value"`
}

// Transformation is a Grafana data transformation (used by tables).
type Transformation struct {
	ID      string `json:"id"`
	Options any    `json:"options"`
}

// TimeSeriesOptions are the options of a timeseries panel.
type TimeSeriesOptions struct {
	Legend  Legend  `json:"legend"`
	Tooltip Tooltip `json:"tooltip"`
}

// Legend configures a panel legend.
type Legend struct {
	DisplayMode string   `json:"displayMode"`
	Placement   string   `json:"placement"`
	ShowLegend  bool     `json:"showLegend"`
	Calcs       []string `json:"calcs"`
}

// Tooltip configures a panel tooltip.
type Tooltip struct {
	Mode string `json:"mode"`
	Sort string `json:"sort"`
}

// StatOptions are the options of a stat panel.
type StatOptions struct {
	ReduceOptions ReduceOptions `json:"reduceOptions"`
	ColorMode     string        `json:"colorMode"`
	GraphMode     string        `json:"graphMode"`
	JustifyMode   string        `json:"justifyMode"`
	TextMode      string        `json:"textMode"`
	Orientation   string        `json:"orientation"`
}

// ReduceOptions says how a stat or gauge reduces a series to one value.
type ReduceOptions struct {
	Calcs  []string `json:"calcs"`
	Fields string   `json:"fields"`
	Values bool     `json:"values"`
}

// BarGaugeOptions are the options of a bargauge panel.
type BarGaugeOptions struct {
	ReduceOptions ReduceOptions `json:"reduceOptions"`
	DisplayMode   string        `json:"displayMode"`
	Orientation   string        `json:"orientation"`
	ShowUnfilled  bool          `json:"showUnfilled"`
}

// HeatmapOptions are the options of a heatmap panel fed by pre-bucketed
// Prometheus histogram series (Calculate false).
type HeatmapOptions struct {
	Calculate    bool         `json:"calculate"`
	CellGap      int          `json:"cellGap"`
	Color        HeatmapColor `json:"color"`
	YAxis        HeatmapAxis  `json:"yAxis"`
	RowsFrame    RowsFrame    `json:"rowsFrame"`
	Tooltip      HeatTooltip  `json:"tooltip"`
	Legend       HeatLegend   `json:"legend"`
	Exemplars    HeatExemplar `json:"exemplars"`
	CellValues   CellValues   `json:"cellValues"`
	ShowValue    string       `json:"showValue"`
	FilterValues FilterValues `json:"filterValues"`
}

// HeatmapColor is the heatmap colour scheme.
type HeatmapColor struct {
	Mode   string `json:"mode"`
	Scheme string `json:"scheme"`
	Scale  string `json:"scale"`
	Steps  int    `json:"steps"`
}

// HeatmapAxis is the heatmap y axis.
type HeatmapAxis struct {
	AxisPlacement string `json:"axisPlacement"`
	Unit          string `json:"unit"`
	Reverse       bool   `json:"reverse"`
}

// RowsFrame says how bucket rows are laid out.
type RowsFrame struct {
	Layout string `json:"layout"`
}

// HeatTooltip is the heatmap tooltip.
type HeatTooltip struct {
	Mode           string `json:"mode"`
	YHistogram     bool   `json:"yHistogram"`
	ShowColorScale bool   `json:"showColorScale"`
}

// HeatLegend is the heatmap legend.
type HeatLegend struct {
	Show bool `json:"show"`
}

// HeatExemplar colours exemplar markers on a heatmap.
type HeatExemplar struct {
	Color string `json:"color"`
}

// CellValues is the unit of a heatmap cell count.
type CellValues struct {
	Unit string `json:"unit"`
}

// FilterValues hides cells at or below Le.
type FilterValues struct {
	Le float64 `json:"le"`
}

// TableOptions are the options of a table panel.
type TableOptions struct {
	ShowHeader bool   `json:"showHeader"`
	CellHeight string `json:"cellHeight"`
}
